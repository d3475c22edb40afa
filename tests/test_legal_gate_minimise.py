"""Only allowed fields reach the store; personal content never does; persons are flagged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from horeca.legal_gate.config import SourceConfig
from horeca.legal_gate.minimise import (
    MinimisePipeline,
    is_personal_key,
    minimise,
    strip_emails,
)


def _source(*fields: str) -> SourceConfig:
    return SourceConfig(name="gusto", spider="structured", status="approved",
                        allowed_domains=("gustoreviews.example",),
                        start_urls=("http://gustoreviews.example/",), allowed_fields=fields)


ITEM = {
    "source": "gusto", "source_id": "42", "url": "http://gustoreviews.example/r/42",
    "name": "Brasserie du Parc", "alt_names": ["Parc"], "address_raw": "Rue X 1, 1000 Bruxelles",
    "street": "Rue X", "postcode": "1000", "phone_raw": "02 513 51 51", "lat": 50.8,
    "lon": 4.35, "review_count": 120, "rating": 4.5, "website": "http://parc.example",
    "reviews": [{"author": "Jan", "text": "Great!"}], "review_text": "Lovely",
    "reviewer": "Marie", "author": "Marie", "photos": ["a.jpg"], "image": "b.jpg",
    "email": "owner@parc.example", "contactEmail": "jan.peeters@mail.example",
    "reviewerName": "Jan", "_debug": "x",
}


def test_only_allowed_fields_and_identity_are_kept() -> None:
    out = minimise(ITEM, _source("name", "address"))
    assert set(out) == {"source", "source_id", "url", "name", "alt_names", "address_raw",
                        "street", "postcode", "natural_person"}


def test_field_groups_expand_to_their_columns() -> None:
    out = minimise(ITEM, _source("geo", "phone", "review_count", "rating"))
    assert {"lat", "lon", "phone_raw", "review_count", "rating"} <= set(out)
    assert "name" not in out and "street" not in out


def test_personal_content_never_passes_whatever_the_config() -> None:
    everything = ("name", "address", "phone", "geo", "website", "category", "review_count",
                  "rating", "price_range", "rooms", "opening_hours", "legal_name", "vat")
    out = minimise(ITEM, _source(*everything))
    for key in ("reviews", "review_text", "reviewer", "author", "photos", "image", "email",
                "contactEmail", "reviewerName", "_debug"):
        assert key not in out
    assert out["review_count"] == 120 and out["rating"] == 4.5


def test_email_addresses_are_cut_out_of_kept_text() -> None:
    item = {**ITEM, "address_raw": "Rue X 1, 1000 Bruxelles, jan.peeters@mail.example",
            "alt_names": ["Parc", "mailto:jan@parc.example"]}
    out = minimise(item, _source("name", "address"))
    assert out["address_raw"] == "Rue X 1, 1000 Bruxelles"
    assert out["alt_names"] == ["Parc", ""]


def test_nested_personal_keys_are_removed_from_kept_values() -> None:
    item = {**ITEM, "opening_hours": {"mon": "9-17", "author": "Jan", "email": "a@b.example"}}
    assert minimise(item, _source("opening_hours"))["opening_hours"] == {"mon": "9-17"}


def test_a_persons_name_flags_the_listing() -> None:
    assert minimise({**ITEM, "name": "Jan Peeters"}, _source("name"))["natural_person"] == 1
    assert minimise({**ITEM, "legal_name": "PEETERS, Jan"},
                    _source("name"))["natural_person"] == 1
    assert minimise(ITEM, _source("name"))["natural_person"] == 0


def test_a_flag_set_by_the_spider_is_kept() -> None:
    assert minimise({**ITEM, "natural_person": 1}, _source("name"))["natural_person"] == 1


def test_personal_keys_are_recognised_in_any_case() -> None:
    for key in ("reviews", "Review_Text", "reviewerName", "author_name", "photoUrl",
                "image_urls", "E-mail", "contact_email", "userName"):
        assert is_personal_key(key), key
    for key in ("review_count", "reviewCount", "rating", "name", "legal_name", "website",
                "opening_hours", "address_raw"):
        assert not is_personal_key(key), key


@given(st.emails())
def test_no_email_survives_in_text(email: str) -> None:
    assert "@" not in strip_emails(f"Call us or write to {email} today")


class _Stats:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def inc_value(self, key: str) -> None:
        self.values[key] = self.values.get(key, 0) + 1


def test_pipeline_wraps_minimise_and_counts_drops() -> None:
    stats = _Stats()
    pipeline = MinimisePipeline(_source("name"), stats)
    out = pipeline.process_item({**ITEM, "name": "Marie Dubois"})
    assert out == minimise({**ITEM, "name": "Marie Dubois"}, _source("name"))
    assert stats.values["legal_gate/minimised/personal"] == 9
    assert stats.values["legal_gate/minimised/not_allowed"] == 10  # address, phone, geo, ...

    assert stats.values["legal_gate/natural_person"] == 1
