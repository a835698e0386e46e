"""The behaviours CRM needs, as the catalogue starts out.

Seeded idempotently: a behaviour type already present (perhaps edited by a
programme lead) is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.incentives.domain.model import BehaviourCategory as C


@dataclass(frozen=True)
class BehaviourDefinition:
    id: str
    display_name: str
    category: C
    unit: str
    description: str
    evidence_source: str
    credits_provider: bool = False
    peer_recognition: bool = False
    recognition_budget: int = 0  # per giver per calendar month (UTC)


SEED: tuple[BehaviourDefinition, ...] = (
    BehaviourDefinition(
        "case-solved-cross-department",
        "Case solved together with another department",
        C.CROSS_BOUNDARY_PROBLEM_SOLVING,
        "case",
        "A customer case closed with a person from another department credited on it, e.g. a service agent "
        "and a billing specialist resolving a disputed invoice together.",
        "CRM case management (case closed with collaborators)",
    ),
    BehaviourDefinition(
        "knowledge-article-published",
        "Knowledge article published",
        C.KNOWLEDGE_SHARING,
        "article",
        "A knowledge base article written or substantially revised and published for colleagues or customers.",
        "CRM knowledge base (article published)",
    ),
    BehaviourDefinition(
        "knowledge-article-reused",
        "Article reused by another team",
        C.KNOWLEDGE_SHARING,
        "reuse",
        "An article attached to a case or answer by a team other than the author's: knowledge that travelled. "
        "The author is credited.",
        "CRM knowledge base (article attached to a case)",
    ),
    BehaviourDefinition(
        "referral-to-other-line-of-business",
        "Referral to another line of business",
        C.INTERNAL_CUSTOMER_SERVICE,
        "referral",
        "A customer referred to another line of business that accepted the lead (e.g. a service agent passing "
        "a mortgage enquiry to retail lending). The providing line of business is credited too.",
        "CRM lead management (cross-line referral accepted)",
        credits_provider=True,
    ),
    BehaviourDefinition(
        "internal-request-served",
        "Internal customer request served",
        C.INTERNAL_CUSTOMER_SERVICE,
        "request",
        "A request from another line of business (an internal customer) fulfilled within its agreed time. "
        "The providing line of business is credited too.",
        "CRM internal service desk",
        credits_provider=True,
    ),
    BehaviourDefinition(
        "peer-recognition-given",
        "Peer recognition given",
        C.TEAMING,
        "recognition",
        "A colleague thanked for help on a customer matter, through the CRM's recognition feature. The giver is "
        "credited; recognising oneself is not possible, and each giver has 10 recognitions a month.",
        "CRM recognition (thanks given)",
        peer_recognition=True,
        recognition_budget=10,
    ),
    BehaviourDefinition(
        "customer-satisfaction-score",
        "Customer satisfaction score on a case",
        C.CUSTOMER_OUTCOME,
        "CSAT 1-5",
        "The customer's satisfaction rating of a closed case, from 1 (very dissatisfied) to 5 (very satisfied); "
        "measure it with an average.",
        "CRM survey (post-case CSAT)",
    ),
    BehaviourDefinition(
        "first-contact-resolution",
        "Resolved at first contact",
        C.CUSTOMER_OUTCOME,
        "case",
        "A case resolved in the customer's first contact, without a transfer or a call back.",
        "CRM case management",
    ),
    BehaviourDefinition(
        "cross-department-meeting",
        "Account review with another department",
        C.NETWORKING,
        "meeting",
        "A customer account review held with people from another department or line of business.",
        "CRM activities (meeting with attendees from other units)",
    ),
    BehaviourDefinition(
        "learning-module-completed",
        "CRM learning module completed",
        C.LEARNING,
        "module",
        "A CRM process or product learning module completed with its assessment passed.",
        "Learning system (completion)",
    ),
)
