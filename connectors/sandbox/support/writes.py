"""Ticket writes over the store: what a create or an update may carry, checked as Zendesk
checks it, and the ticket, comments, audit and metric events a write makes.

A property the stand-in would not apply is refused (422 ``RecordInvalid``), never ignored.
A create takes its first comment from ``comment`` or, as zenpy's ``Ticket(description=...)``
sends it, from ``description``; that comment is the ticket's ``description``. An update
records an audit with the comment and a ``Change`` event per property it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.sandbox.store import Store
from connectors.sandbox.support import documents as d
from connectors.sandbox.support.errors import invalid, not_found

ORGS, USERS, TICKETS = "organizations", "users", "tickets"
COMMENTS, AUDITS, EVENTS = "comments", "audits", "metric_events"
# What a write may set, besides ``comment`` and ``metadata`` (the audit's custom metadata).
_FIELDS = ("subject", "priority", "status", "type", "tags", "external_id", "organization_id",
           "requester_id", "assignee_id")  # fmt: skip
_CREATE = frozenset({*_FIELDS, "comment", "description", "metadata"})
_UPDATE = frozenset({*_FIELDS, "comment", "metadata", "id", "additional_tags", "remove_tags"})
Doc = dict[str, Any]
Change = tuple[str, Any, Any]  # (property, value, previous value)


class TicketWrites:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, ticket: Mapping[str, Any]) -> tuple[Doc, Doc]:
        """The new ticket and its audit."""
        fields = self._checked(ticket, _CREATE)
        comment = ticket.get("comment")
        if "description" in ticket:
            if comment is not None or not isinstance(ticket["description"], str):
                raise invalid("description", "Description: give a comment or a description")
            comment = {"body": ticket["description"]}
        if comment is None:
            raise invalid("description", "Description: cannot be blank")
        body, public, author = self._comment(comment, fields.get("requester_id", d.AGENT_ID))
        if not body:
            raise invalid("description", "Description: cannot be blank")
        org = fields.get("organization_id")
        requester = self.store.get(USERS, str(fields.get("requester_id", d.AGENT_ID)))
        if org is None and requester is not None and requester["organization_id"] is not None:
            fields["organization_id"] = requester["organization_id"]  # the requester's own
        ids = [int(t["id"]) for t in self.store.all(TICKETS)]
        at = d.now()
        doc = d.new_ticket(max(ids, default=0) + 1, fields, body, at)
        self.store.put(TICKETS, str(doc["id"]), doc)
        self.activate(doc["id"], at)
        audit = self._audit(doc, (body, public, author), [], ticket.get("metadata") or {}, at)
        return doc, audit

    def update(self, ticket_id: int, ticket: Mapping[str, Any]) -> tuple[Doc, Doc, list[Change]]:
        """The updated ticket, its audit and what changed."""
        doc = self.store.get(TICKETS, str(ticket_id))
        if doc is None:
            raise not_found()
        if doc["status"] == "closed":
            raise invalid("status", "Status: closed prevents ticket update")
        fields = self._checked(ticket, _UPDATE)
        if fields.pop("id", ticket_id) != ticket_id:
            raise invalid("id", "Id: does not match the ticket updated")
        comment = ticket.get("comment")
        said = self._comment(comment, d.AGENT_ID) if comment is not None else None
        said = said if said and said[0] else None  # a comment without a body adds none
        tags = list(fields.pop("tags", doc["tags"]))
        tags += [t for t in fields.pop("additional_tags", []) if t not in tags]
        removed = fields.pop("remove_tags", [])
        fields["tags"] = [t for t in tags if t not in removed]
        changes = [(f, fields[f], doc[f]) for f in _FIELDS if f in fields and fields[f] != doc[f]]
        at = d.now()  # everything is checked: from here on it is written
        doc |= {f: v for f, v, _ in changes} | {"updated_at": at}
        self.store.put(TICKETS, str(ticket_id), doc)
        audit = self._audit(doc, said, changes, ticket.get("metadata") or {}, at)
        return doc, audit, changes

    def first_comment(self, doc: Doc) -> None:
        """A seeded ticket's description as its first comment (seeded tickets have no audits)."""
        number = self.store.next_number("audit_id", start=8000000001)
        comment = d.comment(number, None, doc["requester_id"], doc["description"], True,
                            doc["via"]["channel"], doc["created_at"])  # fmt: skip
        self.store.put(COMMENTS, str(number), {"ticket_id": doc["id"], "comment": comment})

    def activate(self, ticket_id: int, at: str) -> None:
        event_id = self.store.next_number("metric_event_id", start=7000000001)
        self.store.put(EVENTS, str(event_id), d.activation(event_id, ticket_id, at))

    def _audit(self, doc: Doc, said: tuple[str, bool, int] | None, changes: list[Change],
               custom: Mapping[str, Any], at: str) -> Doc:  # fmt: skip
        """An audit of a write, with its comment and changes as events, numbered after it."""
        audit_id = self.store.next_number("audit_id", start=8000000001)
        events = []
        if said is not None:
            number = self.store.next_number("audit_id")
            comment = d.comment(number, audit_id, said[2], said[0], said[1], "api", at)
            comment["metadata"]["custom"] = dict(custom)
            self.store.put(COMMENTS, str(number), {"ticket_id": doc["id"], "comment": comment})
            events.append(d.comment_event(comment))
        for field, value, previous in changes:
            events.append(
                d.change_event(self.store.next_number("audit_id"), field, value, previous)
            )
        audit = d.audit(audit_id, doc["id"], events, custom, at)
        self.store.put(AUDITS, str(audit_id), audit)
        return audit

    def _comment(self, comment: Any, author: int) -> tuple[str, bool, int]:
        """(body, public, author) of a request's ``comment`` object."""
        if not isinstance(comment, dict):
            raise invalid("comment", "Comment: must be an object with a body")
        for key in comment:
            if key not in ("body", "public", "author_id"):
                raise invalid("comment", f"Comment: the sandbox does not apply {key}")
        body, public = comment.get("body") or "", comment.get("public", True)
        if not isinstance(body, str) or not isinstance(public, bool):
            raise invalid("comment", "Comment: body is text and public true or false")
        author = comment.get("author_id", author)
        if self.store.get(USERS, str(author)) is None:
            raise invalid("author_id", "Author: is invalid")
        return body, public, author

    def _checked(self, ticket: Mapping[str, Any], allowed: frozenset[str]) -> Doc:
        """The settable properties of ``ticket``, each checked; anything else is refused."""
        fields: Doc = {}
        for key, value in ticket.items():
            if key not in allowed:
                raise invalid(key, f"{key}: the sandbox does not apply it")
            if key == "metadata" and not isinstance(value, dict):
                raise invalid(key, "Metadata: must be an object")
            if key not in ("comment", "description", "metadata"):
                fields[key] = self._value(key, value)
        return fields

    def _value(self, key: str, value: Any) -> Any:
        name = key.removesuffix("_id").replace("_", " ").capitalize()
        choices = {"priority": d.PRIORITIES, "status": d.STATUSES, "type": (*d.TICKET_TYPES, None)}
        if key in choices and value not in choices[key]:
            raise invalid(key, f"{name}: is not valid")
        if key in ("tags", "additional_tags", "remove_tags") and not (
            isinstance(value, list) and all(isinstance(t, str) for t in value)
        ):
            raise invalid(key, f"{name}: must be a list of tags")
        if key in ("subject", "external_id") and not isinstance(value, str | None):
            raise invalid(key, f"{name}: must be text")
        if key == "organization_id" and value is not None:
            if self.store.get(ORGS, str(value)) is None:
                raise invalid(key, "Organization: is invalid")
        if key in ("requester_id", "assignee_id") and (key == "requester_id" or value is not None):
            user = self.store.get(USERS, str(value))
            if user is None:
                raise invalid(key, f"{name}: is invalid")
            if key == "assignee_id" and user["role"] == "end-user":
                raise invalid(key, "Assignee: is not an agent")
        return value
