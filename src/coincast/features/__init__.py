"""coincast.features"""
