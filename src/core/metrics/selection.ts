/**
 * Persona-selection accuracy of PAL's "select then generate" inference: how often the selected
 * persona sentence (an index, or -1 for "no persona") is the gold one. Reported overall and per
 * gold class, because PERSONA-CHAT's responses are mostly "none" and a selector that always says
 * "none" would look good overall:
 *
 * - overall = #(selected = gold) / #examples
 * - persona = #(selected = gold) / #(gold ≥ 0)        (the right sentence, among responses that use one)
 * - none    = #(selected = -1)   / #(gold = -1)
 *
 * Any negative index means "none". A class with no example has accuracy null (not 0).
 */

export interface SelectionItem {
  selected: number;
  gold: number;
}

export interface SelectionAccuracy {
  overall: number | null;
  persona: number | null;
  none: number | null;
  count: number;
  personaCount: number;
  noneCount: number;
}

/** Whether a selection is the gold one, any negative index on either side meaning "none". */
export function sameSelection(selected: number, gold: number): boolean {
  return Math.max(-1, selected) === Math.max(-1, gold);
}

export function selectionAccuracy(items: readonly SelectionItem[]): SelectionAccuracy {
  let correct = 0;
  let personaCount = 0;
  let personaCorrect = 0;
  let noneCount = 0;
  let noneCorrect = 0;
  for (const { selected, gold } of items) {
    const right = sameSelection(selected, gold);
    if (right) correct++;
    if (gold < 0) {
      noneCount++;
      if (right) noneCorrect++;
    } else {
      personaCount++;
      if (right) personaCorrect++;
    }
  }
  const ratio = (a: number, b: number) => (b === 0 ? null : a / b);
  return {
    overall: ratio(correct, items.length),
    persona: ratio(personaCorrect, personaCount),
    none: ratio(noneCorrect, noneCount),
    count: items.length,
    personaCount,
    noneCount,
  };
}
