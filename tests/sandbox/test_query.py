"""filterby and orderby of the Console's paged reads: the doc's syntax, and what is refused."""

from __future__ import annotations

import pytest

from sandbox import Sandbox
from sandbox.apis.query import compile_filter, order
from tests.sandbox.conftest import console_error

ITEMS = [
    {"IdList": 1, "Name": "Newsletter", "Public": True, "Notes": None, "Fields": []},
    {"IdList": 2, "Name": "News it's", "Public": False, "Notes": "x", "Fields": []},
    {"IdList": 3, "Name": "Alerts", "Public": True, "Notes": "y", "Fields": []},
]
FIELDS = list(ITEMS[0])


def ids(filterby: str) -> list[int]:
    keep = compile_filter(filterby, FIELDS, ITEMS[0])
    return [i["IdList"] for i in ITEMS if keep(i)]


@pytest.mark.parametrize(
    ("filterby", "expected"),
    [
        ("Name=='Newsletter'", [1]),
        ("\"Name=='Newsletter'\"", [1]),  # the doc wraps the whole value in double quotes
        (" \"Name == 'Newsletter'\" ", [1]),
        ("name=='Newsletter'", [1]),  # field names in any case
        ("Name=='newsletter'", []),  # values case-sensitive
        ('Name=="Alerts"', [3]),
        ("Name.Contains('News')", [1, 2]),
        ("Name.contains('news')", []),
        ("Name.StartsWith('Ale')", [3]),
        ("Name.EndsWith('it''s')", [2]),  # '' is a quote inside '...'
        ("Name!='Alerts'", [1, 2]),
        ("IdList==2", [2]),
        ("idlist != 2 && Public == true", [1, 3]),
        ("IdList==1 || IdList==3 and Public==true", [1, 3]),
        ("Notes==null", [1]),
        ("Notes.Contains('x')", [2]),
    ],
)
def test_filters(filterby: str, expected: list[int]) -> None:
    assert ids(filterby) == expected


@pytest.mark.parametrize(
    "filterby",
    [
        "",
        '""',
        "Name=='Newsletter",
        "Name='Newsletter'",
        "Name==",
        "Name=='a' &&",
        "Name.Contains(News)",
        "Name.Matches('x')",
        "Nope=='x'",
        "IdList=='1'",  # LINQ: incompatible operand types
        "Name==1",
        "Public==1",
        "IdList.Contains('1')",
        "Fields=='x'",
        "(Name=='a')",
        "Name=='a' Name=='b'",
        "Name=='a' # comment",
    ],
)
def test_unparseable_filters_are_refused(filterby: str) -> None:
    with pytest.raises(ValueError):
        compile_filter(filterby, FIELDS, ITEMS[0])


def test_fields_are_checked_without_items() -> None:
    compile_filter("Name=='x'", FIELDS)  # no sample: types are not judged
    with pytest.raises(ValueError):
        compile_filter("Nope=='x'", FIELDS)


@pytest.mark.parametrize(
    ("orderby", "expected"),
    [
        ("idList desc", [3, 2, 1]),
        ('"idList desc"', [3, 2, 1]),
        ("Name asc", [3, 2, 1]),
        ("NAME", [3, 2, 1]),
        ("Public desc, IdList desc", [3, 1, 2]),
        ("Notes", [1, 2, 3]),  # null first
    ],
)
def test_orders(orderby: str, expected: list[int]) -> None:
    assert [i["IdList"] for i in order(list(ITEMS), orderby, FIELDS)] == expected


@pytest.mark.parametrize("orderby", ["", "Name up", "Name asc desc", "Nope", "Fields", "Name,"])
def test_unparseable_orders_are_refused(orderby: str) -> None:
    with pytest.raises(ValueError):
        order(list(ITEMS), orderby, FIELDS)


def test_paged_routes_refuse_garbled_queries(sb: Sandbox, console, uncapped) -> None:
    r = console("GET", "Console/List/3/Groups", params={"filterby": "Nope=='x'"})
    assert "Nope" in console_error(r, 400)  # even with no group to filter
    console_error(console("GET", "Console/List/3/Groups", params={"orderby": "Nope"}), 400)
    r = console("GET", "Console/TrustedSenders", params={"filterby": "EmailAddress=="})
    console_error(r, 400)
    ok = console("GET", "Console/List/3/Groups", params={"filterby": "Name=='x'"})
    assert (ok.status_code, ok.json()["TotalElementsCount"]) == (200, 0)


def test_filter_applies_before_the_page(sb: Sandbox, console, uncapped) -> None:
    for n in range(6):
        sb.add_trusted_sender(f"shop{n}@example.org")
    params = {"filterby": "EmailAddress.StartsWith('shop')", "orderby": "EmailAddress desc"}
    page = console(
        "GET", "Console/TrustedSenders", params=params | {"PageSize": 4, "PageNumber": 1}
    )
    body = page.json()
    assert (body["TotalElementsCount"], body["Skipped"]) == (6, 4)
    assert [i["EmailAddress"] for i in body["Items"]] == ["shop1@example.org", "shop0@example.org"]
