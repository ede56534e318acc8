"""coincast.bus"""
