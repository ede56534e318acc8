"""coincast.stream"""
