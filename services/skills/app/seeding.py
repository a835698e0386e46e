"""Applies the catalogue seed once: scales, categories and skills, each with
its `created` event, in one transaction. A seed that ran is recorded, so a
second run (another replica, another migration) does nothing, and entries a
user later changes or removes are left alone."""

from __future__ import annotations

from services.platform.db import Database, utcnow
from services.skills import catalogue_seed as seed
from services.skills.app.catalogue import CategoryFields, ScaleFields, SkillFields, add_category, add_scale, add_skill
from services.skills.store.tables import CatalogueSeedRow, ProficiencyScaleRow, SkillCategoryRow, SkillRow


async def apply_seed(db: Database) -> bool:
    """True if the seed was applied now, False if it had been before."""
    async with db.write() as uow:
        s = uow.session
        if await s.get(CatalogueSeedRow, seed.SEED_NAME) is not None:
            return False
        for scale_id, name, description, levels in seed.SCALES:
            if await s.get(ProficiencyScaleRow, scale_id) is None:
                await add_scale(uow, scale_id, ScaleFields(name, description, levels))
        await s.flush()
        for category_id, name, description, parents in seed.CATEGORIES:
            if await s.get(SkillCategoryRow, category_id) is None:
                await add_category(uow, category_id, CategoryFields(name, description, parents))
                await s.flush()
        for sk in seed.SKILLS:
            if await s.get(SkillRow, sk.id) is None:
                fields = SkillFields(
                    preferred_name=sk.name,
                    type=sk.type,
                    aliases=sk.aliases,
                    description=sk.description,
                    categories=sk.categories,
                    scale_id=sk.scale,
                    external_references=sk.references,
                    level_descriptions=[(i + 1, text) for i, text in enumerate(sk.levels)],
                )
                await add_skill(uow, sk.id, fields)
                await s.flush()
        s.add(CatalogueSeedRow(name=seed.SEED_NAME, applied_at=utcnow()))
        return True
