"""The catalogue every Engage installation starts with (applied once, by
`python -m services.skills.migrate`; see services/skills/app/seeding.py).

Two scales, described in observable behaviour: the default 5-level scale
(after Dreyfus-style frameworks such as DIRECT and the TES skills matrix) and
a 7-level leadership scale after SFIA's levels of responsibility. Categories
form a small DAG (`collaboration` sits under both CRM behaviours and
leadership). Skills: the CRM behaviours a CRM implementation depends on, the
CRM tool and process skills, and every skill the demo company's roles
require. External references name only ids we are sure of (O*NET content
model elements, SFIA skill codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.skills.domain.model import DEFAULT_SCALE, ExternalReference, Framework, ScaleLevel, SkillType

SEED_NAME = "catalogue-v1"
LEADERSHIP_SCALE = "engage-leadership"

SCALES: list[tuple[str, str, str, list[ScaleLevel]]] = [
    (
        DEFAULT_SCALE,
        "Engage proficiency (1-5)",
        "The default scale. Each level says what a person is seen to do, so two assessors reach the same level.",
        [
            ScaleLevel(1, "Awareness", "Knows what the skill is and why it matters; recognises it in others; "
                       "needs guidance to apply it."),
            ScaleLevel(2, "Foundation", "Applies it in routine, familiar situations with some help; follows "
                       "the team's set practice."),
            ScaleLevel(3, "Practitioner", "Applies it unaided in most situations, including some unfamiliar "
                       "ones; knows when to ask for help."),
            ScaleLevel(4, "Advanced", "Applies it in complex or unusual situations; coaches others; improves "
                       "how the team does it."),
            ScaleLevel(5, "Expert", "Sets the standard in the organisation; others seek them out; shapes "
                       "practice beyond their own area."),
        ],
    ),
    (
        LEADERSHIP_SCALE,
        "Leadership reach (1-7, after SFIA levels of responsibility)",
        "For leadership skills, where the level is the reach of a person's influence.",
        [
            ScaleLevel(1, "Follow", "Contributes to change and plans in their own work when asked."),
            ScaleLevel(2, "Assist", "Helps colleagues adopt changes; raises ideas within the team."),
            ScaleLevel(3, "Apply", "Plans their own work against goals; leads small changes in the team."),
            ScaleLevel(4, "Enable", "Leads a team through change; sets team goals that serve wider aims."),
            ScaleLevel(5, "Ensure, advise", "Accountable for a department's direction; advises other leaders."),
            ScaleLevel(6, "Initiate, influence", "Sets direction for a line of business; influences across "
                       "the organisation and with partners."),
            ScaleLevel(7, "Set strategy, inspire, mobilise", "Sets the organisation's strategy and mobilises "
                       "everyone behind it."),
        ],
    ),
]  # fmt: skip

# (id, display name, description, parents)
CATEGORIES: list[tuple[str, str, str, list[str]]] = [
    ("crm", "CRM capabilities", "What people need for a CRM way of working.", []),
    ("leadership", "Leadership", "Leading people, change and strategy.", []),
    ("crm-behaviours", "CRM behaviours",
     "Behaviours CRM depends on and evaluation forms rarely measure.", ["crm"]),
    ("crm-tools-and-processes", "CRM tools and processes", "Using the CRM system and its processes well.", ["crm"]),
    ("customer-relationships", "Customer relationships", "Knowing and growing customer relationships.", ["crm"]),
    ("collaboration", "Collaboration", "Working across team and department boundaries.",
     ["crm-behaviours", "leadership"]),
]  # fmt: skip


@dataclass(frozen=True)
class SeedSkill:
    id: str
    name: str
    type: SkillType
    description: str
    categories: list[str]
    levels: list[str]  # description of each level, from 1
    aliases: list[str] = field(default_factory=list)
    references: list[ExternalReference] = field(default_factory=list)
    scale: str = DEFAULT_SCALE


def _onet(element: str) -> ExternalReference:
    return ExternalReference(Framework.ONET, element)


def _sfia(code: str) -> ExternalReference:
    return ExternalReference(Framework.SFIA, code)


S, K = SkillType.SKILL, SkillType.KNOWLEDGE

SKILLS: list[SeedSkill] = [
    # ---- CRM behaviours
    SeedSkill("teaming", "Teaming", S, "Working with others towards a shared customer outcome.",
              ["crm-behaviours", "collaboration"],
              ["Takes part in team work when asked.",
               "Shares their part of the work and keeps the team informed.",
               "Plans work with colleagues and steps in when a teammate is stuck.",
               "Brings people from several teams together on one customer problem and keeps them aligned.",
               "Designs how teams work together across the organisation."],
              aliases=["teamwork", "collaboration"], references=[_onet("2.B.1.b")]),
    SeedSkill("problem-solving-across-boundaries", "Problem solving across job boundaries", S,
              "Solving customer problems that do not fit one team or one job description.",
              ["crm-behaviours", "collaboration"],
              ["Recognises when a problem belongs to another team and passes it on with context.",
               "Solves simple cross-team problems with the help of a colleague in the other team.",
               "Owns a customer problem across teams until it is solved.",
               "Fixes the cause of recurring cross-team problems, not just the case.",
               "Changes processes so that problems stop falling between teams."],
              aliases=["cross-functional problem solving", "boundary spanning"], references=[_onet("2.B.2.i")]),
    SeedSkill("knowledge-discovery", "Knowledge discovery", S,
              "Finding what the organisation already knows before solving a problem again.",
              ["crm-behaviours"],
              ["Searches the knowledge base when told where to look.",
               "Finds relevant articles and past cases for routine questions.",
               "Finds answers across systems and colleagues for unfamiliar questions.",
               "Spots patterns in cases and customer data that nobody has written down yet.",
               "Builds the ways the organisation finds and reuses what it knows."],
              aliases=["finding knowledge", "information seeking"]),
    SeedSkill("networking-outside-department", "Networking outside one's department", S,
              "Building and using relationships beyond one's own department.",
              ["crm-behaviours", "collaboration"],
              ["Knows who to contact in the departments they deal with most.",
               "Keeps regular contact with a few people outside their department.",
               "Uses a network across departments to get customer issues solved.",
               "Connects others across departments and lines of business; brokers introductions.",
               "Is the organisation's connector to partners, other lines of business and industry bodies."],
              aliases=["networking", "cross-department networking", "internal networking"]),
    SeedSkill("knowledge-sharing", "Knowledge sharing (building relationships to share knowledge)", S,
              "Building relationships in order to share what one knows and learn from others.",
              ["crm-behaviours", "collaboration"],
              ["Answers colleagues' questions when asked.",
               "Writes up what they learned from a case so others can reuse it.",
               "Shares knowledge proactively within and beyond the team; keeps articles current.",
               "Builds communities of practice; mentors others in sharing.",
               "Shapes a culture where sharing knowledge is expected and rewarded."],
              aliases=["sharing knowledge", "knowledge transfer"]),
    SeedSkill("customer-empathy", "Customer empathy", S,
              "Understanding a customer's situation and feelings and acting on it.",
              ["crm-behaviours", "customer-relationships"],
              ["Listens to customers politely and follows the script.",
               "Acknowledges the customer's feelings and restates their need correctly.",
               "Adapts tone and solution to the customer's situation; de-escalates upset customers.",
               "Anticipates needs the customer has not voiced; handles the hardest conversations.",
               "Designs services from the customer's point of view; teaches empathy to others."],
              aliases=["empathy", "customer focus", "service orientation"],
              references=[_onet("2.B.1.f"), _onet("2.B.1.a")]),
    SeedSkill("coaching", "Coaching", S, "Helping others get better at their work.",
              ["leadership", "collaboration"],
              ["Gives feedback when asked.",
               "Shows a colleague how they do a task.",
               "Coaches individuals regularly with specific, observable feedback.",
               "Coaches a team; builds others' coaching skills.",
               "Builds the organisation's coaching practice."],
              aliases=["mentoring", "instructing"], references=[_onet("2.B.1.e")]),
    SeedSkill("relationship-management", "Relationship management", S,
              "Growing long-term customer relationships across products and lines of business.",
              ["customer-relationships"],
              ["Keeps customer contact details and history up to date.",
               "Plans regular contacts with their customers.",
               "Knows each customer's needs and refers them to the right products and teams.",
               "Leads a portfolio of key relationships across lines of business.",
               "Sets the organisation's approach to customer relationships."],
              aliases=["account management", "customer relationship management"], references=[_sfia("RLMT")]),
    SeedSkill("data-driven-decisions", "Data-driven decisions", S,
              "Using customer and performance data to decide.",
              ["crm-tools-and-processes"],
              ["Reads the standard CRM reports of their team.",
               "Uses reports to choose between routine options.",
               "Builds their own analyses to support a decision and explains the numbers.",
               "Designs measures and experiments; challenges decisions with evidence.",
               "Makes evidence the normal basis of decisions across the organisation."],
              aliases=["analytics", "data literacy"]),
    # ---- CRM tools and processes
    SeedSkill("crm-case-management", "CRM case management", S,
              "Handling customer cases in the CRM system from intake to resolution.",
              ["crm-tools-and-processes"],
              ["Logs a case with the required fields.",
               "Works cases through the standard statuses; uses templates and knowledge links.",
               "Handles complex cases end to end: routing, escalation, SLAs, follow-up.",
               "Improves case workflows, queues and routing rules for the team.",
               "Owns the case management process and its design in the CRM."],
              aliases=["case handling", "ticket management", "service cases"], references=[_sfia("CSMG")]),
    SeedSkill("crm-pipeline-management", "CRM pipeline management", S,
              "Managing leads and opportunities through the sales pipeline in the CRM.",
              ["crm-tools-and-processes"],
              ["Records leads and opportunities in the CRM.",
               "Keeps their opportunities' stages, amounts and dates current.",
               "Manages a full pipeline; forecasts from it with reasonable accuracy.",
               "Reviews and coaches others' pipelines; improves stage definitions.",
               "Designs the pipeline process and forecasting across lines of business."],
              aliases=["opportunity management", "sales pipeline", "lead management"]),
    SeedSkill("campaign-management", "Campaign management", S,
              "Planning, targeting, running and measuring marketing and retention campaigns.",
              ["crm-tools-and-processes"],
              ["Knows the campaign calendar and the campaigns that affect their customers.",
               "Builds a target list and runs a campaign from a template.",
               "Designs and runs campaigns with a business case and measures their results.",
               "Runs multi-channel programmes; optimises targeting and budgets from the results.",
               "Sets the organisation's campaign strategy and measurement standards."],
              aliases=["marketing campaigns", "campaign execution"], references=[_sfia("MKTG")]),
    SeedSkill("customer-data-quality", "Customer data quality", S,
              "Keeping customer data in the CRM complete, correct and de-duplicated.",
              ["crm-tools-and-processes"],
              ["Enters customer data in the required fields.",
               "Corrects errors and duplicates they come across.",
               "Checks and fixes data quality for their portfolio or queue regularly.",
               "Defines data quality rules and reports; trains others.",
               "Owns customer data governance across systems."],
              aliases=["data quality", "master data", "data hygiene"], references=[_sfia("DATM")]),
    SeedSkill("knowledge-management", "Knowledge management", K,
              "How knowledge bases and knowledge processes work.",
              ["crm-tools-and-processes"],
              ["Knows that there is a knowledge base and what it is for.",
               "Knows how articles are created, reviewed and retired.",
               "Maintains a knowledge area: structure, quality and reuse measures.",
               "Designs knowledge processes (for example knowledge-centred service) for several teams.",
               "Sets the organisation's knowledge strategy."],
              aliases=["knowledge base", "KCS", "knowledge-centered service"], references=[_sfia("KNOW")]),
    # ---- leadership
    SeedSkill("change-leadership", "Change leadership", S, "Leading people through changes in how they work.",
              ["leadership"],
              ["Adopts changes in their own work.",
               "Helps colleagues through a change.",
               "Leads a small change in the team.",
               "Leads a team through a significant change in ways of working.",
               "Leads change across a department; handles resistance.",
               "Leads change across a line of business and its partners.",
               "Leads organisation-wide transformation."],
              aliases=["change management", "organisational change"], references=[_sfia("CIPM")],
              scale=LEADERSHIP_SCALE),
    SeedSkill("strategic-thinking", "Strategic thinking", S,
              "Seeing the long-term picture and setting direction.",
              ["leadership"],
              ["Understands how their work supports the team's goals.",
               "Explains the organisation's strategy in their own words.",
               "Plans their work against longer-term goals.",
               "Sets team goals that serve the organisation's strategy.",
               "Shapes a department's plans from market and customer trends.",
               "Sets a line of business's direction and trade-offs.",
               "Sets the organisation's strategy."],
              aliases=["strategy", "strategic planning"], references=[_sfia("ITSP")],
              scale=LEADERSHIP_SCALE),
]  # fmt: skip
