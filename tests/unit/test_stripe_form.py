"""Stripe's form encoding as the Stripe stand-in reads it: exactly what stripe-python writes
(``stripe/_encode.py``), nested objects, indexed and appended arrays, and unreadable keys refused."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from localcloud.standins.stripe.form import FormError, decode


def library_encoding(params: dict[str, object]) -> str:
    """The body stripe-python sends (its own encoder, brackets left unescaped as it leaves them)."""
    from stripe._encode import _api_encode

    return urlencode(list(_api_encode(params))).replace("%5B", "[").replace("%5D", "]")


def test_what_the_library_encodes_decodes_to_the_same_parameters() -> None:
    params = {
        "customer": "cus_1",
        "items": [{"price": "price_a", "quantity": 1}, {"price": "price_b"}],
        "metadata": {"plan": "team", "namespace": "acme-backend"},
        "billing_mode": {"type": "flexible"},
        "tiers": [
            {"up_to": 1000000, "unit_amount_decimal": "0"},
            {"up_to": "inf", "unit_amount_decimal": "0.00000005"},
        ],
        "cancel_at_period_end": True,
        "payload": {"stripe_customer_id": "cus_1", "value": "12500000"},
    }
    decoded = decode(library_encoding(params))
    assert decoded == {
        "customer": "cus_1",
        "items": [{"price": "price_a", "quantity": "1"}, {"price": "price_b"}],
        "metadata": {"plan": "team", "namespace": "acme-backend"},
        "billing_mode": {"type": "flexible"},
        "tiers": [
            {"up_to": "1000000", "unit_amount_decimal": "0"},
            {"up_to": "inf", "unit_amount_decimal": "0.00000005"},
        ],
        "cancel_at_period_end": "true",
        "payload": {"stripe_customer_id": "cus_1", "value": "12500000"},
    }


def test_appended_arrays_keep_their_order_and_blank_values_are_kept() -> None:
    assert decode("lookup_keys[]=b&lookup_keys[]=a&description=") == {"lookup_keys": ["b", "a"], "description": ""}
    assert decode(b"expand[]=data.customer") == {"expand": ["data.customer"]}


def test_indexes_sort_numerically() -> None:
    body = "&".join(f"items[{i}][price]=p{i}" for i in (10, 2, 1, 0))
    assert [x["price"] for x in decode(body)["items"]] == ["p0", "p1", "p2", "p10"]


@pytest.mark.parametrize(
    "body",
    [
        "a[b=1",  # an unclosed bracket
        "a]=1",
        "[x]=1",
        "a=1&a[b]=2",  # a value and an object at once
        "a[b]=1&a=2",
        "a[b][c][d][e][f][g][h][i]=1",  # nested too deep
        "items[100000][price]=x",  # an index no request needs
    ],
)
def test_unreadable_keys_are_refused_naming_them(body: str) -> None:
    with pytest.raises(FormError) as e:
        decode(body)
    assert e.value.param and e.value.param.split("[")[0] in body
