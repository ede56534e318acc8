"""coincast.api"""
