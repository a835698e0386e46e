"""Reading request fields: required text, resource names, offset pages."""

from __future__ import annotations

from services.platform.errors import invalid
from services.platform.resources import Page, parse_name, required_text


def text_in(value: str, field: str, limit: int = 200, *, required: bool = True) -> str:
    """Trimmed text of bounded length; empty allowed unless `required`."""
    if required:
        return required_text(value, field, limit).strip()
    if not value:
        return value  # most optional fields of an import's rows are empty
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    return value.strip()


def names_in(values: list[str], collection: str, field: str) -> list[str]:
    return [parse_name(v, collection, f"{field}[{i}]") for i, v in enumerate(values)]


def person_child(name: str, collection: str, field: str) -> tuple[str, str]:
    """`people/{person}/{collection}/{id}` -> (person, id)."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "people" or parts[2] != collection:
        raise invalid(field, f"must be a resource name people/{{person}}/{collection}/{{id}}, got {name!r}")
    person = parse_name(f"people/{parts[1]}", "people", field)
    child = parse_name(f"x/{parts[3]}", "x", field)
    return person, child


def offset_of(page: Page) -> int:
    """Pages that are ranked rather than keyed carry their offset in the token."""
    after = page.after or 0
    if not isinstance(after, int) or after < 0:
        raise invalid("page_token", "is not a token this API issued")
    return after
