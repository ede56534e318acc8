"""coincast.sources"""
