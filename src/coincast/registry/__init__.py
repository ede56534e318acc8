"""coincast.registry"""
