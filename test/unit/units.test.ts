import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, formatChange, shownChange } from '../../src/core/units';

test('a change too small to show at four places is no change: "0.0000", no sign (it was "+0.0000")', () => {
  assert.equal(formatChange(0), '0.0000');
  assert.equal(formatChange(0.00004), '0.0000');
  assert.equal(formatChange(-0.00004), '0.0000');
  assert.equal(shownChange(0.00004), 0);
  assert.equal(formatChange(0.00005), '+0.0001');
  assert.equal(formatChange(0.0123), '+0.0123');
  assert.equal(formatChange(-0.0456), '-0.0456');
  // Counts are whole: every change shows.
  assert.equal(formatChange(3, true), '+3');
  assert.equal(formatChange(0, true), '0');
  assert.equal(formatChange(-2, true), '-2');
});

test('sizes read in 1024-based units with one decimal', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(8.2 * 1024 * 1024), '8.2 MiB');
});
