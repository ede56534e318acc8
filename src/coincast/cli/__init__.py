"""coincast.cli"""
