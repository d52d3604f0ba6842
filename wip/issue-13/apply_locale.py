"""Apply locale-pending/*.json to locale/{es,en}/LC_MESSAGES/*.po after `make messages`.

Each json maps msgid -> {"es": ..., "en": ..., optional "es_plural"/"en_plural" (lists), optional "domain"}.
Also clears fuzzy flags and previous-msgid comments on entries we translate.
"""

import json
import sys
from pathlib import Path

import polib

root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
pending = {}
for f in sorted((root / "locale-pending").glob("*.json")):
    for msgid, tr in json.loads(f.read_text()).items():
        pending[msgid] = tr

missing = set(pending)
for lang in ("es", "en"):
    for domain in ("django", "djangojs"):
        path = root / "locale" / lang / "LC_MESSAGES" / f"{domain}.po"
        po = polib.pofile(str(path), wrapwidth=78)
        for entry in po:
            tr = pending.get(entry.msgid)
            if tr is None:
                continue
            missing.discard(entry.msgid)
            nplurals = int(po.metadata.get("Plural-Forms", "nplurals=2").split("nplurals=")[1].split(";")[0])
            if entry.msgid_plural:
                plural = tr.get(f"{lang}_plural") or tr[lang]
                if isinstance(plural, str):
                    plural = [tr[lang], plural]
                if lang == "es" and plural[0] == entry.msgid:
                    entry.msgstr_plural = {i: "" for i in range(nplurals)}
                else:
                    forms = list(plural) + [plural[-1]] * nplurals
                    entry.msgstr_plural = {i: forms[i] for i in range(nplurals)}
            else:
                entry.msgstr = "" if (lang == "es" and tr[lang] == entry.msgid) else tr[lang]
            if "fuzzy" in entry.flags:
                entry.flags.remove("fuzzy")
            entry.previous_msgid = None
            entry.previous_msgid_plural = None
            entry.previous_msgctxt = None
        for entry in po.obsolete_entries():
            po.remove(entry)
        po.save(str(path))
        po.save_as_mofile(str(path.with_suffix(".mo")))

# Report untranslated / fuzzy left anywhere
for lang in ("es", "en"):
    for domain in ("django", "djangojs"):
        po = polib.pofile(str(root / "locale" / lang / "LC_MESSAGES" / f"{domain}.po"))
        bad = [e.msgid for e in po if ("fuzzy" in e.flags or (lang == "en" and not e.translated())) and not e.obsolete]
        if bad:
            print(f"{lang}/{domain}: {len(bad)} untranslated/fuzzy:", *bad[:40], sep="\n  ")
if missing:
    print("pending msgids not found in any .po:", *sorted(missing), sep="\n  ")
