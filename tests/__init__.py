"""The test suite: behaviour through gRPC, HTTP and the CLI against real processes, plus unit
tests of the pure rules.
"""
