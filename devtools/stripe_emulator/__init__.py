"""A local Stripe emulator for development and tests (never on the production path).

Run it with ``python -m devtools.stripe_emulator --plans plans.example.toml`` and
point the official ``stripe`` SDK at it; see ``docs/emulator.md``.
"""
