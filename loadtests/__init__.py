"""Load tests: Locust journeys (locustfile.py) and side-by-side benchmarks (bench/)."""
