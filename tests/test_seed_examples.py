"""Every request example on the Runware model pages, built from tool-level arguments."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kling_mcp.catalog import get_model
from kling_mcp.constraints import check
from kling_mcp.core import prepare
from kling_mcp.payload import VideoRequest

from .seed_cases import CASES, EXAMPLES, example_id, normalise, resolve

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def test_every_example_on_the_pages_has_a_case() -> None:
    assert len(EXAMPLES) == 29
    assert sorted(example_id(e) for e in EXAMPLES) == sorted(CASES)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared/seeds is not beside this checkout")
def test_stored_examples_match_the_seed_pages() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from extract_seed_examples import extract

    assert extract(SEEDS) == EXAMPLES


@pytest.fixture(params=EXAMPLES, ids=lambda e: f"{e['seed_file'][:3]}-{e['title'][:40]}")
def example(request: pytest.FixtureRequest) -> dict:
    return request.param


def _request(example: dict) -> VideoRequest:
    _tool, args = CASES[example_id(example)]
    return VideoRequest.model_validate(resolve(args, example["request"]))


def test_the_page_request_itself_passes_the_checker(example: dict) -> None:
    assert check(example["request"]) == []


def test_builder_reproduces_the_page_request(example: dict) -> None:
    prepared = prepare(_request(example))
    assert prepared.violations == []
    assert normalise(prepared.payload) == normalise(example["request"])
    assert prepared.payload["deliveryMethod"] == "async"
    assert prepared.payload["includeCost"] is True


def test_estimate_matches_the_cost_the_service_charged(example: dict) -> None:
    prepared = prepare(_request(example))
    estimate = prepared.estimate
    assert estimate is not None
    charged = Decimal(str(example["cost"]))
    if "video" in example["request"].get("inputs", {}):
        # An edit is billed for the source clip's length, which the request does not say:
        # the estimate gives the rate, and the charge must be a whole number of seconds at it.
        assert estimate.total is None
        assert estimate.rate_per_second == get_model(example["request"]["model"]).pricing.video_input
        seconds = charged / estimate.rate_per_second
        assert seconds == seconds.to_integral_value() and seconds >= 1
        assert estimate.reserve >= charged
        exact = prepare(_request(example).model_copy(update={"source_duration": int(seconds)})).estimate
        assert exact is not None and exact.total == charged
    else:
        assert estimate.total == charged
