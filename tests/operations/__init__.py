"""Operating the service: the CLI (migrate, reconcile, audit, dead letters), make run and its
logs.
"""
