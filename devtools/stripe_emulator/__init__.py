"""A local Stripe emulator for development and tests (never on the production path).

Run it with ``python -m devtools.stripe_emulator --plans plans.example.toml`` and
point the official ``stripe`` SDK at it; see ``docs/emulator.md``.

Layout: ``account.Account`` holds one emulated account's state; ``resources/``
holds one module of functions per Stripe resource family acting on it;
``objects/`` builds the fixture-shaped objects; ``app.create_app`` serves them
over HTTP (``/v1`` routes, hosted pages, ``/_emulator`` controls).
"""
