import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareReleases, isAtLeast, parseRelease } from '../../src/core/versions';

test('parseRelease reads the leading release numbers of Python and Node versions', () => {
  assert.deepEqual(parseRelease('1.13.0a0+gitunknown'), { major: 1, minor: 13, patch: 0 });
  assert.deepEqual(parseRelease('2.11.0+cu130'), { major: 2, minor: 11, patch: 0 });
  assert.deepEqual(parseRelease('v20.20.2'), { major: 20, minor: 20, patch: 2 });
  assert.deepEqual(parseRelease('3'), { major: 3, minor: 0, patch: 0 });
  assert.equal(parseRelease('nightly'), undefined);
  assert.equal(parseRelease(''), undefined);
});

test('isAtLeast compares numerically, not as text', () => {
  assert.equal(isAtLeast('1.13.0a0', '1.13'), true, "Debian's pre-release tag is the 1.13 release");
  assert.equal(isAtLeast('1.9.1', '1.13'), false);
  assert.equal(isAtLeast('1.12.1', '1.13'), false);
  assert.equal(isAtLeast('2.0.0', '1.13'), true);
  assert.equal(isAtLeast('3.10.4', '3.8'), true);
  assert.equal(isAtLeast('3.7.9', '3.8'), false);
  assert.equal(isAtLeast('garbage', '1.0'), false);
});

test('compareReleases orders by major, then minor, then patch', () => {
  const r = (s: string) => parseRelease(s)!;
  assert.ok(compareReleases(r('1.2.3'), r('1.2.4')) < 0);
  assert.ok(compareReleases(r('1.10.0'), r('1.9.9')) > 0);
  assert.equal(compareReleases(r('2.0'), r('2.0.0')), 0);
});
