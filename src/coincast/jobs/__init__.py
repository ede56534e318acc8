"""coincast.jobs: training as a service (walk-forward validated fits, progress events, a job runner)."""
