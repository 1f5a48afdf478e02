"""An aiosmtpd handler for the notify tests.

    python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c tousu_mailbox.Handler DIR

Saves every message it accepts as DIR/NNNN.eml (the bytes received) and
DIR/NNNN.json (what Python's email package reads in it: headers decoded,
the body parts decoded, the raw Subject header, the client's port), so a
test can check what a real SMTP server received without a MIME parser of
its own. Recipients whose local part is `reject` are refused with 550,
`busy` with 451, to test how the sender maps SMTP errors.
"""

import email
import email.policy
import itertools
import json
import os


class Handler:
    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.counter = itertools.count(1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("tousu_mailbox.Handler takes one argument: the directory to save mail in")
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "reject":
            return "550 5.1.1 No such user here"
        if local == "busy":
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        legacy = email.message_from_bytes(raw, policy=email.policy.compat32)
        parts = []
        for part in parsed.walk():
            if part.is_multipart():
                continue
            parts.append(
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "transfer_encoding": part.get("Content-Transfer-Encoding", ""),
                    "content": part.get_content(),
                }
            )

        def header(name):
            value = parsed.get(name)
            return None if value is None else str(value)

        summary = {
            "peer_port": session.peer[1] if session.peer else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": header("From"),
            "to": header("To"),
            "subject": header("Subject"),
            "raw_subject": legacy.get("Subject"),
            "message_id": header("Message-ID"),
            "in_reply_to": header("In-Reply-To"),
            "references": header("References"),
            "content_type": parsed.get_content_type(),
            "parts": parts,
        }
        name = "%04d" % next(self.counter)
        with open(os.path.join(self.directory, name + ".eml"), "wb") as f:
            f.write(raw)
        # Written under another name first: a reader never sees half a file.
        tmp = os.path.join(self.directory, name + ".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False)
        os.replace(tmp, os.path.join(self.directory, name + ".json"))
        return "250 Message accepted for delivery"
