"""Plans that SaaS products sell (issue 13).

checkout_request: the interval, seats and promotion code a request_id stands
for, and the trial it was granted (so a repeat answers the same).
subscription: what a product page shows without calling Stripe (interval,
seats, unit amount, currency, trial end, discount as JSON).
"""

from peewee import BigIntegerField, CharField, DateTimeField, IntegerField, TextField


def up(migrator, db):  # type: ignore[no-untyped-def]
    migrator.migrate(
        migrator.add_column(
            "checkout_request", "interval", CharField(max_length=8, default="month")
        ),
        migrator.add_column("checkout_request", "quantity", IntegerField(default=1)),
        migrator.add_column(
            "checkout_request", "promotion_code", CharField(max_length=255, default="")
        ),
        migrator.add_column("checkout_request", "trial_days", IntegerField(default=0)),
        migrator.add_column("subscription", "interval", CharField(max_length=8, default="")),
        migrator.add_column("subscription", "quantity", IntegerField(default=1)),
        migrator.add_column("subscription", "unit_amount", BigIntegerField(default=0)),
        migrator.add_column("subscription", "currency", CharField(max_length=3, default="")),
        migrator.add_column("subscription", "trial_end", DateTimeField(null=True)),
        migrator.add_column("subscription", "discount", TextField(default="")),
    )


def down(migrator, db):  # type: ignore[no-untyped-def]
    migrator.migrate(
        *(
            migrator.drop_column("checkout_request", name)
            for name in ("interval", "quantity", "promotion_code", "trial_days")
        ),
        *(
            migrator.drop_column("subscription", name)
            for name in ("interval", "quantity", "unit_amount", "currency", "trial_end", "discount")
        ),
    )
