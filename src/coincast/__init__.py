"""coincast: real-time cryptocurrency market analysis and honest price forecasting."""

__version__ = "0.1.0"
