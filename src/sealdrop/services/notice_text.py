"""What a notice to a journalist says: one fixed text per language, nothing else.

A notice must not tell anyone who reads it (the mail provider, an Apprise service, whoever sees a
phone's lock screen) anything about the activity: no pseudonym, no count, no content, no time
finer than the schedule. So the text is fixed, with the organisation's name as its one variable,
and the subject is the same whether there is activity or not (a mailbox listing or a push preview
shows only the subject). Every language of the source interface is here; a test checks that each
has every text.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class NoticeText:
    subject: str
    activity: str  # there is new activity
    empty: str  # there is none (only with send_when_empty)


_TEXTS = {
    "en": NoticeText(
        subject="Sealdrop notice from {organisation}",
        activity="There is new activity on {organisation}'s Sealdrop. Open your reader.",
        empty="There is no new activity on {organisation}'s Sealdrop.",
    ),
    "ar": NoticeText(
        subject="إشعار Sealdrop من {organisation}",
        activity="يوجد نشاط جديد على Sealdrop الخاص بـ {organisation}. افتح القارئ.",
        empty="لا يوجد نشاط جديد على Sealdrop الخاص بـ {organisation}.",
    ),
    "es": NoticeText(
        subject="Aviso de Sealdrop de {organisation}",
        activity="Hay actividad nueva en el Sealdrop de {organisation}. Abre tu lector.",
        empty="No hay actividad nueva en el Sealdrop de {organisation}.",
    ),
    "fa": NoticeText(
        subject="اعلان Sealdrop از {organisation}",
        activity="فعالیت تازه‌ای در Sealdrop سازمان {organisation} هست. برنامهٔ خواننده را باز کنید.",
        empty="فعالیت تازه‌ای در Sealdrop سازمان {organisation} نیست.",
    ),
    "ru": NoticeText(
        subject="Уведомление Sealdrop от {organisation}",
        activity="В Sealdrop организации {organisation} есть новая активность. "
        "Откройте приложение для чтения (reader).",
        empty="В Sealdrop организации {organisation} нет новой активности.",
    ),
    "tr": NoticeText(
        subject="{organisation} Sealdrop bildirimi",
        activity="{organisation} Sealdrop'unda yeni etkinlik var. Okuyucunuzu açın.",
        empty="{organisation} Sealdrop'unda yeni etkinlik yok.",
    ),
    "zh_Hans": NoticeText(
        subject="来自 {organisation} 的 Sealdrop 通知",
        activity="{organisation} 的 Sealdrop 有新动态。请打开您的阅读器。",
        empty="{organisation} 的 Sealdrop 没有新动态。",
    ),
    "zh_Hant": NoticeText(
        subject="來自 {organisation} 的 Sealdrop 通知",
        activity="{organisation} 的 Sealdrop 有新動態。請開啟您的閱讀器。",
        empty="{organisation} 的 Sealdrop 沒有新動態。",
    ),
}
TEXTS = MappingProxyType(_TEXTS)
LANGUAGES = tuple(_TEXTS)


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


def notice(language: str, organisation: str, activity: bool) -> Notice:
    """The notice in ``language`` (English for a language not in the catalog)."""
    text = TEXTS.get(language, TEXTS["en"])
    body = text.activity if activity else text.empty
    return Notice(
        subject=text.subject.format(organisation=organisation),
        body=body.format(organisation=organisation),
    )
