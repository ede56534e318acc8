"""coincast.train"""
