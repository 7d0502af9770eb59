"""Reading: reads made from the design (one reader, one case, one arm), the reader's worklist, the timed read page
and API (open, heartbeat, autosave, submit), and the draft shown in AI-arm reads only. Sits above inference (it
shows drafts) and imaging (it shows images) (docs/architecture.md)."""
