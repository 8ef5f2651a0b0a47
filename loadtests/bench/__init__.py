"""Side-by-side benchmarks: gateway endpoints against a bare Falcon app on the same Granian.

    python -m loadtests.bench [--workers 1] [--duration 10] [--connections 50] [--rounds 3]

Absolute req/s on a shared machine mean little; the ratio of a target to the baseline measured
next to it in the same run is what to read and compare between commits (see loadtests/README.md).
"""
