"""The best-subscription rule (pure): which of a user's subscriptions answers, and until when."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from billing_service.best_subscription import choose, relevant, tier_rank
from billing_service.entitlements.model import EntryBook, build_entry
from billing_service.entitlements.wire import ResponseBook, entitlements_message
from billing_service.plans import load_catalog
from billing_service.storage.models import Subscription, utcnow
from tests.entitlements.entries import same_answer
from tests.support.processes import PLANS_FILE

CATALOG = load_catalog(PLANS_FILE)
BOOK = ResponseBook(CATALOG)
NOW = utcnow()


def sub(sub_id: str, **fields: object) -> Subscription:
    values: dict[str, object] = {
        "user_id": "u1",
        "stripe_subscription_id": sub_id,
        "status": "active",
        "plan": "pro",
        "current_period_end": NOW + timedelta(days=10),
        "cancel_at_period_end": False,
        "stripe_created": 100,
    }
    values.update(fields)
    return Subscription(**values)


def test_tiers_rank_by_price_and_free_is_lowest() -> None:
    assert tier_rank(CATALOG, "free") < tier_rank(CATALOG, "pro") < tier_rank(CATALOG, "studio")
    assert tier_rank(CATALOG, "retired") == tier_rank(CATALOG, "free")


def test_the_highest_tier_answers_and_the_other_live_one_is_named() -> None:
    pro, studio = sub("sub_pro"), sub("sub_studio", plan="studio", stripe_created=50)
    choice = choose([pro, studio], CATALOG, NOW)
    assert (choice.best, choice.grant.tier, choice.others) == (studio, "studio", (pro,))


def test_equal_tiers_prefer_the_latest_period_end() -> None:
    early = sub("sub_a", current_period_end=NOW + timedelta(days=2), stripe_created=200)
    late = sub("sub_b", current_period_end=NOW + timedelta(days=20))
    assert choose([early, late], CATALOG, NOW).best is late


def test_a_lapsed_grant_loses_to_a_paying_one_and_incomplete_is_not_a_duplicate() -> None:
    unpaid = sub("sub_unpaid", status="unpaid", plan="studio")
    incomplete = sub("sub_new", status="incomplete", plan="studio", stripe_created=300)
    active = sub("sub_pro")
    choice = choose([unpaid, incomplete, active], CATALOG, NOW)
    assert choice.best is active
    assert choice.others == (unpaid,)  # incomplete is not billed: not a live duplicate


def test_ended_subscriptions_never_compete_with_an_unended_one() -> None:
    ended = sub("sub_old", status="canceled", plan="studio", stripe_created=999)
    pro = sub("sub_pro")
    assert relevant([ended, pro]) == [pro]
    older = sub("sub_older", status="incomplete_expired", stripe_created=1)
    assert [r.stripe_subscription_id for r in relevant([older, ended])] == ["sub_old"]
    choice = choose([ended, pro], CATALOG, NOW)
    assert choice.best is not None and choice.best.stripe_subscription_id == "sub_pro"
    assert choose([ended], CATALOG, NOW).grant.tier == "free"
    assert choose([], CATALOG, NOW).best is None


def test_the_cache_chooses_again_when_the_better_subscription_runs_out() -> None:
    """A cancelling studio beats an active pro until its period ends; then pro, with no event."""
    end = NOW + timedelta(hours=1)
    studio = sub("sub_studio", plan="studio", cancel_at_period_end=True, current_period_end=end)
    pro = sub("sub_pro")
    entry = build_entry("u1", [studio, pro], BOOK, NOW)
    assert entry.tier == "studio"
    assert entry.grant.access_until == end
    later = build_entry("u1", entry.rows, BOOK, end)
    assert later.tier == "pro"
    assert same_answer(EntryBook(BOOK).expired(entry, end), later)
    assert later.checks["priority_support"].allowed
    assert not later.checks["api_access"].allowed
    full = entitlements_message("u1", entry.rows, CATALOG, end)
    assert (full.stripe_subscription_id, list(full.other_live_subscription_ids)) == (
        "sub_pro",
        ["sub_studio"],
    )


statuses = st.sampled_from(
    ["active", "trialing", "past_due", "unpaid", "paused", "incomplete", "canceled"]
)


@given(
    st.lists(
        st.tuples(statuses, st.sampled_from(["pro", "studio"]), st.integers(-5, 30), st.booleans()),
        min_size=1,
        max_size=5,
    ),
    st.randoms(),
)
def test_the_choice_does_not_depend_on_the_order_rows_are_read(
    specs: list[tuple[str, str, int, bool]], rng: object
) -> None:
    rows = [
        sub(
            f"sub_{i}",
            status=status,
            plan=plan,
            current_period_end=NOW + timedelta(days=days),
            cancel_at_period_end=cancelling,
            stripe_created=i % 2,
        )
        for i, (status, plan, days, cancelling) in enumerate(specs)
    ]
    shuffled = list(rows)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = choose(rows, CATALOG, NOW), choose(shuffled, CATALOG, NOW)
    assert first.best is second.best
    assert first.others == second.others
    assert first.grant == second.grant
    # Never worse than any single subscription would give.
    best_alone = max(tier_rank(CATALOG, choose([r], CATALOG, NOW).grant.tier) for r in rows)
    assert tier_rank(CATALOG, first.grant.tier) == best_alone
