"""Reading the upload form's body: which parts become what, in which order, within which bounds.

The form (``conversation.html``) has three fields: the CSRF token, one message box and one file
input (one part per chosen file, or one empty part when none is chosen). Anything else in a body
was not sent by that form.
"""

from __future__ import annotations

from sealdrop.errors import CsrfTokenInvalid, DuplicateMessage, TooManyItems
from sealdrop.services.sessions import SessionService, SourceSession
from sealdrop.services.submissions import MAX_ITEMS_PER_SUBMISSION, Receipt, SubmissionIntake
from sealdrop.web.multipart import BodyLimit, MultipartReader


def receive_form(
    intake: SubmissionIntake, session: SourceSession, read: BodyLimit, boundary: bytes
) -> Receipt:
    """Encrypt and store the parts of a submission's body as they are read (in a worker thread).
    Any refusal leaves the intake, which discards everything it staged."""
    reader = MultipartReader(read, boundary)
    checked = False
    messages = 0
    with intake:
        for index, part in enumerate(reader.parts()):
            if index == 0:
                # The token is the form's first field, so a forged post is refused before
                # any of its body is encrypted or staged.
                token = part.read_small(256).decode("ascii", "replace")
                if part.name != "csrf_token" or not SessionService.csrf_valid(session, token):
                    raise CsrfTokenInvalid()
                checked = True
                continue
            # Every part after the token counts against the one cap, even one skipped
            # unread below: the form has a message box and a file input, so a body of more
            # parts than the cap allows items is refused whole (nothing it staged is kept).
            if index > MAX_ITEMS_PER_SUBMISSION:
                raise TooManyItems(MAX_ITEMS_PER_SUBMISSION)
            if part.name == "message":
                # One message box: a second message part is a forged body, with or without
                # a file name (the intake refuses a second message too).
                messages += 1
                if messages > 1:
                    raise DuplicateMessage("more than one message")
            if part.name == "message" and part.filename is None:
                intake.add_message(part)
            elif part.name == "files" and part.filename:
                intake.add_file(part.filename, part.content_type, part)
            # Anything else (an empty file input, unknown fields) is skipped unread.
        if not checked:
            raise CsrfTokenInvalid()
        while read():
            pass  # the epilogue after the closing boundary, within the same limit
        return intake.commit()
