"""JSON bodies of the admin incident endpoints. Lengths are bounded before any work is done."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sekisho.status.components import Component
from sekisho.status.models import Impact, IncidentState
from sekisho.status.service import BODY_MAX, TITLE_MAX, Bilingual


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TitleIn(_Body):
    ja: str = Field(min_length=1, max_length=TITLE_MAX)
    en: str = Field(min_length=1, max_length=TITLE_MAX)

    def text(self) -> Bilingual:
        return Bilingual(self.ja, self.en)


class TextIn(_Body):
    ja: str = Field(min_length=1, max_length=BODY_MAX)
    en: str = Field(min_length=1, max_length=BODY_MAX)

    def text(self) -> Bilingual:
        return Bilingual(self.ja, self.en)


class IncidentOpenIn(_Body):
    """``{"title": {"ja", "en"}, "message": {"ja", "en"}, "components": ["email"],
    "impact": "degraded" | "outage", "state"?: "investigating"}``"""

    title: TitleIn
    message: TextIn
    """The first update."""
    components: list[Component] = Field(min_length=1, max_length=len(Component))
    impact: Impact
    state: IncidentState = IncidentState.INVESTIGATING


class IncidentUpdateIn(_Body):
    """``{"state": "identified", "message": {"ja", "en"}, "impact"?: "outage"}``"""

    state: IncidentState
    message: TextIn
    impact: Impact | None = None


class IncidentResolveIn(_Body):
    """``{"message"?: {"ja", "en"}}``; without one a standard "resolved" note is posted."""

    message: TextIn | None = None
