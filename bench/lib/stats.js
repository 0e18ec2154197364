// Small statistics for the benchmark rows: medians of rounds, and percentiles of latencies.

export function median(values) {
  return percentile(values, 50);
}

/** The p-th percentile (nearest rank) of `values`. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/** [min, max] of `values` divided by `reference`: the spread of a ratio over the rounds. */
export function spreadOf(values, reference) {
  return [Math.min(...values) / reference, Math.max(...values) / reference];
}

export function formatSpread([low, high]) {
  return `${low.toFixed(2)}–${high.toFixed(2)}`;
}

/** Prints rows as an aligned table under `title`. */
export function printTable(title, columns, rows) {
  console.log(`\n${title}\n`);
  const widths = columns.map((column, i) =>
    Math.max(column.length, ...rows.map((row) => String(row[i]).length)),
  );
  const line = (cells) =>
    cells
      .map((cell, i) =>
        i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]),
      )
      .join('  ');
  console.log(line(columns));
  for (const row of rows) console.log(line(row));
}
