// PAL's metrics (src/core/metrics) against independent implementations and hand-checked cases:
// BLEU against Debian's nltk (corpus_bleu / sentence_bleu, uniform weights, no smoothing) on the
// ConvAI2 responses, ROUGE-L against hand-computed LCS and a coco-caption-style Python ROUGE-L,
// Distinct, selection accuracy, P-F1/P-Cover and C.score by hand, and C.score end to end through
// transformers.js with a tiny NLI model built here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../src/engine/paths';
import { importParlai } from '../../src/core/importers/parlai';
import {
  clippedMatches,
  consistencyScores,
  contentWords,
  corpusBleu,
  distinctN,
  evaluate,
  evaluateText,
  IdfTable,
  lcsLength,
  NO_NLI_NOTE,
  personaCover,
  personaF1,
  rougeL,
  selectionAccuracy,
  sentenceBleu,
  tokenize,
  Vocabulary,
  type NliLabel,
  recitesFact,
  echoesPartner,
  usesSelectedFact,
} from '../../src/core/metrics/index';
import { loadNliModel, nliLabelMap } from '../../src/engine/eval';
import { personaChatDir, skipWithoutData } from './shared-data';
import { porterStem } from '../../src/core/porter';
import { buildTinyNli, expectedLabel, torchSkip } from './tiny-nli';

const python = process.env.PAL_PYTHON || '/usr/bin/python3';
const requirePython = process.env.CI === 'true' || process.env.PAL_REQUIRE_NLTK === '1';
const convai2 = path.join(personaChatDir, 'convai2_valid_dev.txt');
const TOLERANCE = 1e-9;

/**
 * A skip reason when nltk cannot be used here, else false. Where it is required (CI,
 * PAL_REQUIRE_NLTK=1) its absence is a failing test instead.
 */
function nltkSkip(): string | false {
  const r = spawnSync(python, ['-c', 'from nltk.translate.bleu_score import corpus_bleu'], { encoding: 'utf8', timeout: 60_000 });
  let reason: string | undefined;
  if (r.error) reason = `${python}: ${r.error.message}`;
  else if (r.status !== 0) reason = `${python} has no nltk: ${(r.stderr.trim().split('\n').pop() ?? '').trim()}`;
  if (!reason) return false;
  if (requirePython) {
    test('Python with nltk is available (CI or PAL_REQUIRE_NLTK=1 require it)', () => {
      throw new Error(`${reason}; install python3-nltk or set PAL_PYTHON`);
    });
  }
  return `${reason}; set PAL_PYTHON, or PAL_REQUIRE_NLTK=1 to fail instead`;
}

const ids = (v: Vocabulary, text: string) => v.encode(tokenize(text));

/** Deterministic pseudo-random numbers in [0, 1) (a 32-bit LCG), for reproducible perturbations. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A response with words dropped, neighbours swapped and a word inserted: a non-trivial hypothesis. */
function perturb(tokens: readonly string[], rand: () => number, filler: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of tokens) {
    const r = rand();
    if (r < 0.15) continue;
    out.push(t);
    if (r > 0.92) out.push(filler[Math.floor(rand() * filler.length)]!);
  }
  for (let i = 0; i + 1 < out.length; i++) {
    if (rand() < 0.12) [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('tokenisation', () => {
  test('whitespace (the default) lower-cases and splits on white space only', () => {
    assert.deepEqual(tokenize('  I am GOOD , i just got off work .\n'), ['i', 'am', 'good', ',', 'i', 'just', 'got', 'off', 'work', '.']);
    assert.deepEqual(tokenize("I'm good, thanks!"), ["i'm", 'good,', 'thanks!']);
    assert.deepEqual(tokenize('   '), []);
  });
  test('words splits punctuation off and keeps inner apostrophes', () => {
    assert.deepEqual(tokenize("I'm good, thanks!", 'words'), ["i'm", 'good', ',', 'thanks', '!']);
    assert.deepEqual(tokenize('Café… 20 books/year', 'words'), ['café', '…', '20', 'books', '/', 'year']);
  });
});

describe('BLEU', () => {
  test('hand case: clipping, brevity penalty, and the hypothesis/reference direction', () => {
    const v = new Vocabulary();
    // Papineni's example: "the the the the the the the" against "the cat is on the mat":
    // 7 unigrams, "the" clipped to its 2 reference occurrences, so p1 = 2/7; c = 7 > r = 6, BP = 1.
    const hyp = ids(v, 'the the the the the the the');
    const ref = ids(v, 'the cat is on the mat');
    assert.equal(clippedMatches(hyp, ref, 1), 2);
    assert.equal(corpusBleu([hyp], [ref], 1)[0], 2 / 7);
    // Swapped, the short sentence is the hypothesis: p1 = 2/6 ("the" twice in 6), c = 6 < r = 7,
    // so BP = exp(1 - 7/6). The official PAL code computes this one by mistake.
    assert.ok(Math.abs(corpusBleu([ref], [hyp], 1)[0]! - (2 / 6) * Math.exp(1 - 7 / 6)) < 1e-15);
  });

  test('hand case: cumulative BLEU-2 and a missing order', () => {
    const v = new Vocabulary();
    // "i like cats" vs "i like to ski": p1 = 2/3, p2 = 1/2 ("i like"), c = 3, r = 4.
    const h = ids(v, 'i like cats');
    const r = ids(v, 'i like to ski');
    const bp = Math.exp(1 - 4 / 3);
    const [b1, b2, b3] = sentenceBleu(h, r);
    assert.ok(Math.abs(b1! - bp * (2 / 3)) < 1e-15);
    assert.ok(Math.abs(b2! - bp * Math.sqrt((2 / 3) * (1 / 2))) < 1e-15);
    // No trigram matches: nltk's method0 puts 2.2e-308 in place of p3, so BLEU-3 is tiny, not 0.
    assert.ok(b3! > 0 && b3! < 1e-100);
    // No unigram match at all: 0 exactly.
    assert.equal(sentenceBleu(ids(v, 'x y z'), r)[0], 0);
    assert.deepEqual(sentenceBleu(new Int32Array(0), r), [0, 0, 0, 0]);
  });

  test('clipped matches: the direct comparison and the hash-map path agree with a plain count', () => {
    const rand = random(7);
    const naive = (h: Int32Array, r: Int32Array, n: number) => {
      const count = (s: Int32Array) => {
        const m = new Map<string, number>();
        for (let i = 0; i + n <= s.length; i++) m.set(s.subarray(i, i + n).join(' '), (m.get(s.subarray(i, i + n).join(' ')) ?? 0) + 1);
        return m;
      };
      const rc = count(r);
      let total = 0;
      for (const [g, c] of count(h)) total += Math.min(c, rc.get(g) ?? 0);
      return total;
    };
    for (let trial = 0; trial < 300; trial++) {
      // Short pairs take the direct path, long ones (over 4096 n-gram pairs) the map.
      const len = () => Math.floor(rand() * (trial % 3 === 0 ? 160 : 20));
      const vocab = 2 + Math.floor(rand() * 6);
      const h = Int32Array.from({ length: len() }, () => Math.floor(rand() * vocab));
      const r = Int32Array.from({ length: len() }, () => Math.floor(rand() * vocab));
      for (let n = 1; n <= 4; n++) assert.equal(clippedMatches(h, r, n), naive(h, r, n), `trial ${trial}, n ${n}`);
    }
  });

  const missingData = skipWithoutData(convai2);
  const missingNltk = missingData ? false : nltkSkip();
  test('corpus and sentence BLEU-1..4 agree with nltk to 1e-9 on the ConvAI2 responses', { skip: missingData || missingNltk, timeout: 300_000 }, () => {
    const { examples } = importParlai(readFileSync(convai2, 'utf8'), convai2);
    assert.ok(examples.length > 5000);
    const rand = random(2024);
    const references = examples.map((e) => tokenize(e.response));
    const allWords = references.flat();
    // Two hypothesis sets: the partner's turn before the response (another sentence on the same
    // topic), and the response itself with words dropped, swapped and inserted.
    const sets: Record<string, { hyps: string[][]; refs: string[][] }> = {
      previousTurn: { hyps: examples.map((e) => tokenize(e.history[e.history.length - 1] ?? '')), refs: references },
      perturbed: { hyps: references.map((r) => perturb(r, rand, allWords)), refs: references },
    };
    sets.both = { hyps: [...sets.previousTurn!.hyps, ...sets.perturbed!.hyps], refs: [...references, ...references] };
    const sample = Array.from({ length: 300 }, (_, i) => i * 17);

    const script = String.raw`
import json, sys, warnings
from nltk.translate.bleu_score import corpus_bleu, sentence_bleu
warnings.simplefilter("ignore")  # method0's warning about missing n-gram orders
data = json.load(sys.stdin)
weights = [(1.0,), (1 / 2, 1 / 2), (1 / 3, 1 / 3, 1 / 3), (1 / 4, 1 / 4, 1 / 4, 1 / 4)]
out = {}
for name, s in data["sets"].items():
    out[name] = corpus_bleu([[r] for r in s["refs"]], s["hyps"], weights=weights)
s = data["sets"]["perturbed"]
out["sentence"] = [sentence_bleu([s["refs"][i]], s["hyps"][i], weights=weights) for i in data["sample"]]
json.dump(out, sys.stdout)
`;
    const r = spawnSync(python, ['-c', script], { input: JSON.stringify({ sets, sample }), encoding: 'utf8', maxBuffer: 64 << 20, timeout: 240_000 });
    assert.equal(r.status, 0, r.stderr);
    const nltk = JSON.parse(r.stdout) as Record<string, number[] | number[][]>;

    let worst = 0;
    for (const [name, s] of Object.entries(sets)) {
      const v = new Vocabulary();
      const ours = corpusBleu(
        s.hyps.map((h) => v.encode(h)),
        s.refs.map((x) => v.encode(x)),
      );
      const theirs = nltk[name] as number[];
      for (let n = 0; n < 4; n++) {
        const d = Math.abs(ours[n]! - theirs[n]!);
        worst = Math.max(worst, d);
        assert.ok(d <= TOLERANCE, `${name} BLEU-${n + 1}: ours ${ours[n]} nltk ${theirs[n]}`);
      }
      // Real agreement, not two zeros: these corpora score well above 0 at every order.
      assert.ok(theirs[3]! > 0.01, `${name} BLEU-4 is ${theirs[3]}`);
    }
    const v = new Vocabulary();
    const s = sets.perturbed!;
    (nltk.sentence as number[][]).forEach((theirs, k) => {
      const i = sample[k]!;
      const ours = sentenceBleu(v.encode(s.hyps[i]!), v.encode(s.refs[i]!));
      for (let n = 0; n < 4; n++) {
        const d = Math.abs(ours[n]! - theirs[n]!);
        worst = Math.max(worst, d);
        assert.ok(d <= TOLERANCE, `sentence ${i} BLEU-${n + 1}: ours ${ours[n]} nltk ${theirs[n]}`);
      }
    });
    console.log(
      `BLEU vs nltk: ${sets.both!.hyps.length} pairs (corpus) and ${sample.length} sentences, max |difference| ${worst.toExponential(2)}; nltk corpus BLEU-1..4 of the perturbed set: ${(nltk.perturbed as number[]).map((x) => x.toFixed(4)).join(', ')}`,
    );
  });

  test('ROUGE-L agrees with a coco-caption-style Python ROUGE-L on the ConvAI2 responses', { skip: missingData || missingNltk, timeout: 300_000 }, () => {
    const { examples } = importParlai(readFileSync(convai2, 'utf8'), convai2);
    const refs = examples.map((e) => tokenize(e.response));
    const hyps = examples.map((e) => tokenize(e.history[e.history.length - 1] ?? ''));
    // coco-caption's ROUGE-L (test/reference/coco_rouge_l.py), one reference per hypothesis.
    const script = String.raw`
import json, sys
sys.path.insert(0, ${JSON.stringify(path.join(packageRoot(), 'test', 'reference'))})
from coco_rouge_l import rouge_l
data = json.load(sys.stdin)
json.dump([rouge_l(c, r) for c, r in zip(data["hyps"], data["refs"])], sys.stdout)
`;
    const r = spawnSync(python, ['-c', script], { input: JSON.stringify({ hyps, refs }), encoding: 'utf8', maxBuffer: 64 << 20, timeout: 240_000 });
    assert.equal(r.status, 0, r.stderr);
    const theirs = JSON.parse(r.stdout) as number[];
    const v = new Vocabulary();
    let worst = 0;
    theirs.forEach((t, i) => {
      worst = Math.max(worst, Math.abs(rougeL(v.encode(hyps[i]!), v.encode(refs[i]!)) - t));
    });
    assert.ok(worst <= 1e-12, `max difference ${worst}`);
    assert.ok(theirs.some((t) => t > 0.3));
  });
});

describe("the labeller's Porter stemmer", () => {
  const missing = skipWithoutData(convai2) || nltkSkip();
  test("stems every word of the ConvAI2 dev set as nltk's PorterStemmer(ORIGINAL_ALGORITHM) does", { skip: missing }, () => {
    const words = [
      ...new Set(
        readFileSync(convai2, 'utf8')
          .toLowerCase()
          .split(/[^a-z0-9]+/)
          .filter((w) => w.length >= 3 && !/^\d+$/.test(w)),
      ),
    ].sort();
    const r = spawnSync(
      python,
      [
        '-c',
        'import json, sys\nfrom nltk.stem.porter import PorterStemmer as P\np = P(mode=P.ORIGINAL_ALGORITHM)\nprint(json.dumps([p.stem(w) for w in json.load(sys.stdin)]))',
      ],
      { input: JSON.stringify(words), encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const theirs = JSON.parse(r.stdout) as string[];
    const differ = words.filter((w, i) => porterStem(w) !== theirs[i]).map((w) => `${w}: ${porterStem(w)} vs ${theirs[words.indexOf(w)]}`);
    assert.deepEqual(differ, [], `${differ.length} of ${words.length} words`);
    assert.ok(words.length > 5000);
  });
  test("the paper's own examples", () => {
    const cases: [string, string][] = [
      ['caresses', 'caress'],
      ['ponies', 'poni'],
      ['caress', 'caress'],
      ['cats', 'cat'],
      ['feed', 'feed'],
      ['agreed', 'agre'],
      ['plastered', 'plaster'],
      ['motoring', 'motor'],
      ['sing', 'sing'],
      ['conflated', 'conflat'],
      ['hopping', 'hop'],
      ['falling', 'fall'],
      ['filing', 'file'],
      ['happy', 'happi'],
      ['relational', 'relat'],
      ['generalization', 'gener'],
      ['hiking', 'hike'],
      ['hike', 'hike'],
    ];
    for (const [word, stem] of cases) assert.equal(porterStem(word), stem, word);
  });
});

describe('ROUGE-L (hand-verified)', () => {
  const v = new Vocabulary();
  const f = (p: number, r: number) => (p === 0 || r === 0 ? 0 : ((1 + 1.44) * p * r) / (r + 1.44 * p));

  test('LCS lengths', () => {
    // "a b c d e" vs "a c e": a, c, e in order -> 3.
    assert.equal(lcsLength(ids(v, 'a b c d e'), ids(v, 'a c e')), 3);
    // "a b c" vs "c b a": any single word, no two in the same order -> 1.
    assert.equal(lcsLength(ids(v, 'a b c'), ids(v, 'c b a')), 1);
    // "i like to ski in winter" vs "in winter i like to ski": "i like to ski" -> 4.
    assert.equal(lcsLength(ids(v, 'i like to ski in winter'), ids(v, 'in winter i like to ski')), 4);
    // "a b a b a" vs "b a b": "b a b" -> 3 (repeats matter).
    assert.equal(lcsLength(ids(v, 'a b a b a'), ids(v, 'b a b')), 3);
    assert.equal(lcsLength(ids(v, ''), ids(v, 'a')), 0);
  });

  test('F-measure with beta 1.2', () => {
    // identical: P = R = 1 -> 1.
    assert.equal(rougeL(ids(v, 'i have two dogs .'), ids(v, 'i have two dogs .')), 1);
    // prediction "i like cats" vs reference "i like to ski": LCS 2 ("i like"), P = 2/3, R = 2/4.
    assert.ok(Math.abs(rougeL(ids(v, 'i like cats'), ids(v, 'i like to ski')) - f(2 / 3, 1 / 2)) < 1e-15);
    // prediction "a c e" vs reference "a b c d e": LCS 3, P = 1, R = 3/5 -> 2.44·0.6/(0.6 + 1.44) = 0.717647...
    assert.ok(Math.abs(rougeL(ids(v, 'a c e'), ids(v, 'a b c d e')) - 1.464 / 2.04) < 1e-15);
    // and the other way round: P = 3/5, R = 1 -> 2.44·0.6/(1 + 0.864) = 0.785408...
    assert.ok(Math.abs(rougeL(ids(v, 'a b c d e'), ids(v, 'a c e')) - 1.464 / 1.864) < 1e-15);
    // nothing in common, or an empty side: 0.
    assert.equal(rougeL(ids(v, 'x y'), ids(v, 'a b')), 0);
    assert.equal(rougeL(ids(v, ''), ids(v, 'a b')), 0);
  });
});

describe('Distinct, length, selection accuracy', () => {
  test('Distinct-1/2 count over all predictions', () => {
    const v = new Vocabulary();
    const preds = [ids(v, 'i am fine'), ids(v, 'i am good'), ids(v, 'ok')];
    // unigrams: i am fine i am good ok = 7, distinct {i, am, fine, good, ok} = 5.
    assert.equal(distinctN(preds, 1, v.size), 5 / 7);
    // bigrams: (i am)(am fine)(i am)(am good) = 4, distinct 3.
    assert.equal(distinctN(preds, 2, v.size), 3 / 4);
    assert.equal(distinctN([ids(v, 'ok')], 2, v.size), 0);
    // The string-keyed path (for vocabularies too large for numeric keys) counts the same.
    assert.equal(distinctN(preds, 2, 2 ** 30), 3 / 4);
  });

  test('Distinct-n equals a plain set of joined n-grams, on random corpora with repeats and hash collisions', () => {
    let seed = 7;
    const rand = (k: number) => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % k;
    for (let round = 0; round < 200; round++) {
      // Small vocabularies repeat n-grams often; a large one spreads keys over the whole table.
      const vocabularySize = [3, 50, 100_000][round % 3]!;
      const corpus = Array.from({ length: 1 + rand(40) }, () => Int32Array.from({ length: rand(12) }, () => rand(vocabularySize)));
      for (let n = 1; n <= 4; n++) {
        const grams = corpus.flatMap((s) => Array.from({ length: Math.max(0, s.length - n + 1) }, (_, i) => s.subarray(i, i + n).join(',')));
        const expected = grams.length === 0 ? 0 : new Set(grams).size / grams.length;
        assert.equal(distinctN(corpus, n, vocabularySize), expected, `round ${round}, n ${n}`);
      }
    }
  });

  test('selection accuracy, overall and per class', () => {
    const acc = selectionAccuracy([
      { selected: 0, gold: 0 }, // persona, right
      { selected: 2, gold: 1 }, // persona, wrong sentence
      { selected: -1, gold: 3 }, // persona, said none
      { selected: -1, gold: -1 }, // none, right
      { selected: 1, gold: -1 }, // none, wrong
    ]);
    assert.deepEqual(acc, { overall: 2 / 5, persona: 1 / 3, none: 1 / 2, count: 5, personaCount: 3, noneCount: 2 });
    assert.deepEqual(selectionAccuracy([]), { overall: null, persona: null, none: null, count: 0, personaCount: 0, noneCount: 0 });
  });
});

describe('P-F1 and P-Cover (hand-verified)', () => {
  const personas = ['i have two dogs .', 'i like to ski .'].map((p) => tokenize(p));

  test('content words drop function words and punctuation', () => {
    assert.deepEqual([...contentWords(tokenize("i have two dogs , i'm so happy !"))], ['two', 'dogs', 'happy']);
  });

  test('P-F1', () => {
    // R = {two, dogs}, P = {two, dogs, like, ski}: precision 1, recall 1/2, F1 = 2/3.
    const a = personaF1(tokenize('i have two dogs .'), personas);
    assert.deepEqual(a, { precision: 1, recall: 0.5, f1: 2 / 3 });
    // R = {like, cats}, overlap {like}: precision 1/2, recall 1/4, F1 = 2·(1/8)/(3/4) = 1/3.
    const b = personaF1(tokenize('i like cats'), personas);
    assert.ok(Math.abs(b.f1 - 1 / 3) < 1e-15);
    assert.deepEqual(personaF1(tokenize('hello there'), personas), { precision: 0, recall: 0, f1: 0 });
  });

  test('P-Cover with idf(w) = 1 / (1 + ln(1 + tf(w)))', () => {
    const idf = new IdfTable();
    idf.add(tokenize('dogs dogs dogs ski')); // tf: dogs 3, ski 1; two, like unseen (weight 1)
    const w = (tf: number) => 1 / (1 + Math.log(1 + tf));
    // "two dogs": sentence 1 {two, dogs} covers (1 + w(3)) / 2; sentence 2 {like, ski} covers 0.
    assert.ok(Math.abs(personaCover(tokenize('two dogs !'), personas, idf)! - (1 + w(3)) / 2) < 1e-15);
    // "i ski": sentence 2 covers w(1) / 2, which beats sentence 1's 0.
    assert.ok(Math.abs(personaCover(tokenize('i ski'), personas, idf)! - w(1) / 2) < 1e-15);
    assert.equal(personaCover(tokenize('two dogs'), [], idf), null);
  });
});

describe('selected fact used', () => {
  const personas = ['i have two dogs.', 'i like to ski in the alps.', 'i work as a nurse.'];
  test('counts, among turns that selected a fact, the replies that use that fact', () => {
    const records = [
      { prediction: 'my two dogs are asleep', reference: 'x', personas, selected: 0 }, // uses it
      { prediction: 'i ski in the alps every winter', reference: 'x', personas, selected: 0 }, // uses another fact
      { prediction: 'my dogs love skiing in the alps', reference: 'x', personas, selected: 1 }, // uses it, and one more
      { prediction: 'hello there', reference: 'x', personas, selected: -1 }, // no fact selected: not counted
      { prediction: 'i am a nurse', reference: 'x', personas }, // no selection recorded: not counted
    ];
    const { report, stats } = evaluateText(records, { bootstrap: false });
    assert.deepEqual(
      stats.map((s) => s.selectedFactUse),
      [1, 0, 1, null, null],
    );
    assert.equal(report.selectedFactUse, 2 / 3);
    assert.equal(usesSelectedFact({ prediction: 'my two dogs', reference: '', selected: 5, personas }), null, 'an index past the facts');
    assert.equal(evaluateText([records[3]!], { bootstrap: false }).report.selectedFactUse, null);
  });
});

describe('fact recited word for word', () => {
  const personas = ['i have two dogs.', 'i like to ski in the alps.', 'i ski.'];
  test('a persona sentence of 4 words or more inside the reply, whatever the case and punctuation', () => {
    assert.equal(recitesFact('I like to ski in the Alps!', personas), true);
    assert.equal(recitesFact('well , i have two dogs . and you ?', personas), true);
    assert.equal(recitesFact('i have two dogsitters', personas), false, 'a word boundary');
    assert.equal(recitesFact('i like to ski in the mountains', personas), false, 'most of it is not all of it');
    assert.equal(recitesFact('i ski.', personas), false, 'a short fact said whole is not counted');
  });
  test('the report counts recitals among the replies that have personas', () => {
    const { report, stats } = evaluateText(
      [
        { prediction: 'i have two dogs .', reference: 'x', personas },
        { prediction: 'my dogs are asleep', reference: 'x', personas },
        { prediction: 'i have two dogs .', reference: 'x' },
      ],
      { bootstrap: false },
    );
    assert.deepEqual(
      stats.map((s) => s.factRecital),
      [1, 0, null],
    );
    assert.equal(report.factRecital, 1 / 2);
  });
});

describe("partner's turn echoed", () => {
  test("4 words running from the partner's last turn, whatever the case and punctuation", () => {
    const turn = 'hi , just got back from riding my horse ! you ?';
    assert.equal(echoesPartner('Hi, just got back from riding my horse.', turn), true);
    assert.equal(echoesPartner('oh , back from riding , was it fun', turn), false, 'three of its words in a row, then others');
    assert.equal(echoesPartner('so you got back from riding my horse', turn), true, 'anywhere in the reply');
    assert.equal(echoesPartner('i love riding horses too', turn), false, 'the words, not the topic');
    assert.equal(echoesPartner('just got back ?', turn), false, 'three words are not four');
    assert.equal(echoesPartner('from riding my horsebox', turn), false, 'a word boundary');
  });
  test('the report counts echoes among the replies that have a history, by the last turn only', () => {
    const history = ['i like to go riding my horse a lot', 'do you have any pets at home ?'];
    const { report, stats } = evaluateText(
      [
        { prediction: 'do you have any pets ?', reference: 'x', history },
        { prediction: 'i like to go riding my horse', reference: 'x', history },
        { prediction: 'do you have any pets ?', reference: 'x' },
      ],
      { bootstrap: false },
    );
    assert.deepEqual(
      stats.map((s) => s.partnerEcho),
      [1, 0, null],
    );
    assert.equal(report.partnerEcho, 1 / 2);
  });
});

describe('C.score', () => {
  const examples = [
    { response: 'yes i love dogs', personas: ['i have two dogs .', 'i like to ski .', 'i am a nurse .'] },
    { response: 'no , not you', personas: ['i have two dogs .', 'i like to ski .'] },
    { response: 'i do', personas: [] },
  ];
  // A fake NLI: entailment for the first persona sentence, contradiction when the response says
  // "no", else neutral. Per example: [+1, 0, 0] -> sum 1, max 1; [+1, -1] -> sum 0, max 1.
  const fake = async (premise: string, hypothesis: string): Promise<NliLabel> =>
    premise === 'i have two dogs .' ? 'entailment' : hypothesis.startsWith('no') ? 'contradiction' : 'neutral';

  test('sum (Madotto et al.) and max (PAL code) over persona sentences, averaged over responses with personas', async () => {
    const seen: [string, string][] = [];
    const result = await consistencyScores(examples, async (p, h) => {
      seen.push([p, h]);
      return fake(p, h);
    });
    assert.equal(result.cScore, (1 + 0) / 2);
    assert.equal(result.cScoreMax, (1 + 1) / 2);
    assert.equal(result.count, 2);
    assert.deepEqual(result.examples[0], { labels: ['entailment', 'neutral', 'neutral'], sum: 1, max: 1 });
    assert.deepEqual(result.examples[1], { labels: ['entailment', 'contradiction'], sum: 0, max: 1 });
    assert.equal(result.examples[2], null);
    // The persona sentence is the premise, the response the hypothesis.
    assert.ok(seen.some(([p, h]) => p === 'i am a nurse .' && h === 'yes i love dogs'));
    assert.equal(seen.length, 5);
  });

  test('without a classifier C.score is null and the report says why; a bad label is an error', async () => {
    const records = examples.map((e) => ({ prediction: e.response, reference: e.response, personas: e.personas }));
    const { report } = await evaluate(records);
    assert.equal(report.cScore, null);
    assert.equal(report.cScoreMax, null);
    assert.ok(report.notes.includes(NO_NLI_NOTE));
    const withNli = await evaluate(records, { classify: fake });
    assert.equal(withNli.report.cScore, 0.5);
    assert.ok(!withNli.report.notes.some((n) => n.startsWith('C.score not computed')));
    await assert.rejects(
      consistencyScores(examples, async () => 'maybe' as NliLabel),
      /returned "maybe"/,
    );
  });

  test('id2label is mapped case-insensitively, and a model that is not 3-way NLI is refused', () => {
    assert.deepEqual(nliLabelMap({ 0: 'CONTRADICTION', 1: 'Neutral', 2: 'entailment' }), ['contradiction', 'neutral', 'entailment']);
    assert.deepEqual(nliLabelMap({ 0: 'entails', 1: 'neutral', 2: 'contradicts' }), ['entailment', 'neutral', 'contradiction']);
    assert.throws(() => nliLabelMap({ 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' }), /not one of entailment/);
    assert.throws(() => nliLabelMap({ 0: 'entailment', 1: 'not_entailment' }), /not one of|exactly once/);
    assert.throws(() => nliLabelMap(undefined), /no "id2label"/);
  });

  const noTorch = torchSkip();
  describe('end to end through transformers.js, with a tiny NLI model built here', { skip: noTorch }, () => {
    let dir: string;
    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'pal-nli-'));
      await buildTinyNli(dir);
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('the model loads from its folder, its labels map through id2label, and C.score follows', async () => {
      const model = await loadNliModel(dir);
      try {
        assert.deepEqual(model.labels, ['contradiction', 'neutral', 'entailment']);
        // The persona sentences say "no"/"hate" where the responses say "yes"/"love": a classifier
        // that read them the wrong way round would give contradiction where entailment is expected.
        const data = [
          { response: 'yes i love dogs', personas: ['no i hate dogs .', 'i like to ski .'] },
          { response: 'no , not you', personas: ['yes i agree .', 'i am a nurse .', 'i have a cat .'] },
          { response: 'i have a cat', personas: ['no .'] },
          { response: 'yes no no', personas: ['i have two dogs .'] },
        ];
        const expected = data.map((d) => d.personas.map(() => expectedLabel(d.response)));
        assert.deepEqual(expected, [['entailment', 'entailment'], ['contradiction', 'contradiction', 'contradiction'], ['neutral'], ['contradiction']]);
        const result = await consistencyScores(data, model.classify);
        assert.deepEqual(
          result.examples.map((e) => e!.labels),
          expected,
        );
        // Sums 2, -3, 0, -1 -> mean -0.5; maxima 1, -1, 0, -1 -> mean -0.25.
        assert.equal(result.cScore, -0.5);
        assert.equal(result.cScoreMax, -0.25);
      } finally {
        await model.dispose();
      }
    });
  });
});

describe('speed', () => {
  test('BLEU + ROUGE-L + Distinct over 10,000 ConvAI2 pairs (printed; npm run bench measures it against nltk)', { skip: skipWithoutData(convai2) }, () => {
    const { examples } = importParlai(readFileSync(convai2, 'utf8'), convai2);
    const records = [];
    for (let i = 0; records.length < 10_000; i++) {
      const e = examples[i % examples.length]!;
      const previous = e.history[e.history.length - 1] ?? '';
      records.push({ prediction: i < examples.length ? previous : examples[(i * 7) % examples.length]!.response, reference: e.response });
    }
    const t0 = process.hrtime.bigint();
    const { report } = evaluateText(records);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(report.count, 10_000);
    console.log(`evaluateText on 10,000 pairs: ${ms.toFixed(0)} ms (BLEU-4 ${report.bleu4.toFixed(4)}, ROUGE-L ${report.rougeL.toFixed(4)})`);
  });
});
