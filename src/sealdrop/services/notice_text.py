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
    # Machine translations without native review (issue 16), like the source interface's.
    "ug": NoticeText(
        subject="{organisation} دىن Sealdrop ئۇقتۇرۇشى",
        activity="{organisation} نىڭ Sealdrop ىدا يېڭى ھەرىكەت بار. ئوقۇغۇچىڭىزنى (reader) ئېچىڭ.",
        empty="{organisation} نىڭ Sealdrop ىدا يېڭى ھەرىكەت يوق.",
    ),
    "bo": NoticeText(
        subject="{organisation} ནས་ Sealdrop བརྡ་ཐོ།",
        activity="{organisation} ཡི་ Sealdrop ལ་བྱ་འགུལ་གསར་པ་ཡོད། ཀློག་ཆས་ (reader) ཁ་ཕྱེ་རོགས།",
        empty="{organisation} ཡི་ Sealdrop ལ་བྱ་འགུལ་གསར་པ་མེད།",
    ),
    "uk": NoticeText(
        subject="Сповіщення Sealdrop від {organisation}",
        activity="У Sealdrop організації {organisation} є нова активність. "
        "Відкрийте програму для читання (reader).",
        empty="У Sealdrop організації {organisation} немає нової активності.",
    ),
    "be": NoticeText(
        subject="Апавяшчэнне Sealdrop ад {organisation}",
        activity="У Sealdrop арганізацыі {organisation} ёсць новая актыўнасць. "
        "Адкрыйце праграму для чытання (reader).",
        empty="У Sealdrop арганізацыі {organisation} няма новай актыўнасці.",
    ),
    "vi": NoticeText(
        subject="Thông báo Sealdrop từ {organisation}",
        activity="Có hoạt động mới trên Sealdrop của {organisation}. "
        "Hãy mở trình đọc (reader) của bạn.",
        empty="Không có hoạt động mới trên Sealdrop của {organisation}.",
    ),
    "my": NoticeText(
        subject="{organisation} မှ Sealdrop အသိပေးချက်",
        activity="{organisation} ၏ Sealdrop တွင် လုပ်ဆောင်မှုအသစ် ရှိသည်။ သင့် reader ကို ဖွင့်ပါ။",
        empty="{organisation} ၏ Sealdrop တွင် လုပ်ဆောင်မှုအသစ် မရှိပါ။",
    ),
    "km": NoticeText(
        subject="ការជូនដំណឹង Sealdrop ពី {organisation}",
        activity="មានសកម្មភាពថ្មីនៅលើ Sealdrop របស់ {organisation}។ សូមបើកកម្មវិធីអាន (reader) របស់អ្នក។",
        empty="គ្មានសកម្មភាពថ្មីនៅលើ Sealdrop របស់ {organisation} ទេ។",
    ),
    "ko": NoticeText(
        subject="{organisation}의 Sealdrop 알림",
        activity="{organisation}의 Sealdrop에 새 활동이 있습니다. 리더(reader)를 여세요.",
        empty="{organisation}의 Sealdrop에 새 활동이 없습니다.",
    ),
    "fr": NoticeText(
        subject="Avis Sealdrop de {organisation}",
        activity="Il y a une nouvelle activité sur le Sealdrop de {organisation}. "
        "Ouvrez votre lecteur (reader).",
        empty="Il n'y a pas de nouvelle activité sur le Sealdrop de {organisation}.",
    ),
    "de": NoticeText(
        subject="Sealdrop-Hinweis von {organisation}",
        activity="Im Sealdrop von {organisation} gibt es neue Aktivität. Öffnen Sie Ihren Reader.",
        empty="Im Sealdrop von {organisation} gibt es keine neue Aktivität.",
    ),
    "pt_BR": NoticeText(
        subject="Aviso do Sealdrop de {organisation}",
        activity="Há atividade nova no Sealdrop de {organisation}. Abra o seu leitor (reader).",
        empty="Não há atividade nova no Sealdrop de {organisation}.",
    ),
    "hi": NoticeText(
        subject="{organisation} से Sealdrop सूचना",
        activity="{organisation} के Sealdrop पर नई गतिविधि है। अपना रीडर (reader) खोलें।",
        empty="{organisation} के Sealdrop पर कोई नई गतिविधि नहीं है।",
    ),
    "ur": NoticeText(
        subject="{organisation} کی طرف سے Sealdrop اطلاع",
        activity="{organisation} کے Sealdrop پر نئی سرگرمی ہے۔ اپنا ریڈر (reader) کھولیں۔",
        empty="{organisation} کے Sealdrop پر کوئی نئی سرگرمی نہیں ہے۔",
    ),
    "id": NoticeText(
        subject="Pemberitahuan Sealdrop dari {organisation}",
        activity="Ada aktivitas baru di Sealdrop {organisation}. Buka pembaca (reader) Anda.",
        empty="Tidak ada aktivitas baru di Sealdrop {organisation}.",
    ),
    "ps": NoticeText(
        subject="د {organisation} لخوا د Sealdrop خبرتیا",
        activity="د {organisation} په Sealdrop کې نوی فعالیت شته. خپل لوستونکی (reader) پرانیزئ.",
        empty="د {organisation} په Sealdrop کې نوی فعالیت نشته.",
    ),
    "am": NoticeText(
        subject="ከ{organisation} የSealdrop ማሳወቂያ",
        activity="በ{organisation} Sealdrop ላይ አዲስ እንቅስቃሴ አለ። አንባቢዎን (reader) ይክፈቱ።",
        empty="በ{organisation} Sealdrop ላይ አዲስ እንቅስቃሴ የለም።",
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
