"""coincast.lake"""
