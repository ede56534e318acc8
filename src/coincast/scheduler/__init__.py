"""coincast.scheduler"""
