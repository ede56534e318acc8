"""coincast.evaluate"""
