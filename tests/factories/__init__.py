"""Test factories, one module per app: `trial` (people, trials, cases, made through the real services),
`imaging` (image rows with their files), `reading` (drafts, readers' reads), `rating` (submitted reads)."""
