-- The summary rows a window reads (see views.sql beside this file).

-- ft_summary_rows(p := PART) is the summary rows of a part the window reads:
-- the hour rows of the hours it covers whole (from ft_summary_h0 to
-- ft_summary_h1, which the engine sets from the window), the minute rows
-- of the others. An hour row is the sum of its file's minute rows, so
-- either counts alike; a day reads 60 times fewer rows.
CREATE OR REPLACE MACRO ft_summary_rows(p := NULL) AS TABLE
SELECT * FROM derived_summary
WHERE part = p AND (
    (grain = 'hour' AND bucket >= getvariable('ft_summary_h0')::TIMESTAMP_NS AND bucket < getvariable('ft_summary_h1')::TIMESTAMP_NS)
    OR (grain = 'minute' AND (bucket < getvariable('ft_summary_h0')::TIMESTAMP_NS OR bucket >= getvariable('ft_summary_h1')::TIMESTAMP_NS)));

