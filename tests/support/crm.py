"""Behaviour events as a CRM system publishes them: CloudEvents on the CRM_BEHAVIOURS stream."""

from __future__ import annotations

from nats.js import JetStreamContext

from services.platform.cloudevents import CloudEvent

SUBJECT = "crm.behaviours.v1.case"


def crm_event(event_id: str, body: bytes) -> CloudEvent:
    return CloudEvent(
        type="crm.behaviours.v1.behaviour.observed",
        source="/crm/fault-suite",
        subject=f"cases/{event_id}",
        data=body,
        dataschema="proto:engage.incentives.v1.BehaviourObserved",
        id=event_id,
    )


async def publish(js: JetStreamContext, event_id: str, body: bytes) -> None:
    """Publishes one event and waits for the broker's acknowledgement."""
    await js.publish(SUBJECT, body, headers=crm_event(event_id, body).headers(), timeout=10)
