"""coincast.assistant"""
