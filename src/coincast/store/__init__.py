"""coincast.store"""
