"""The build: a recipe (:mod:`.recipe`) run as cached stages (:mod:`.stages`) by
:mod:`.pipeline` — read, map, split, dedup (:mod:`.dedup`), decontaminate, report — then
the exports (:mod:`detforge.exports`)."""
