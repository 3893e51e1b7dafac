/**
 * `pal.json`, the note PAL Studio writes beside every model it exports, and the prompt format a
 * model folder answers in. Written by the pipeline's export and read by inference and by runs
 * (a base that PAL Studio trained on select selects by itself): one reader, one writer.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promptVersion, TEXT_FORMAT, type ChatTurn, type PromptFormat } from '../core/prompts';

export type ModelTask = 'select' | 'generate' | 'plain';

export interface PalModelInfo {
  /** `text` when absent: models written before chat prompts existed. */
  readonly prompt_format?: PromptFormat['kind'];
  readonly prompt_template_version?: number;
  readonly tasks?: readonly string[];
  /** The context the model was trained with; inference trims dialogues to fit it. */
  readonly max_length?: number;
}

export async function readPalInfo(folder: string): Promise<PalModelInfo> {
  try {
    return JSON.parse(await fs.readFile(path.join(folder, 'pal.json'), 'utf8')) as PalModelInfo;
  } catch {
    return {};
  }
}

export function palInfo(format: PromptFormat['kind'], tasks: readonly string[], maxLength?: number): PalModelInfo {
  return { prompt_format: format, prompt_template_version: promptVersion(format), tasks, ...(maxLength ? { max_length: maxLength } : {}) };
}

export async function writePalInfo(folder: string, info: PalModelInfo): Promise<void> {
  await fs.writeFile(path.join(folder, 'pal.json'), `${JSON.stringify(info, null, 2)}\n`);
}

/** The tasks a model learnt in the prompts it would be given now (none when its template version is not the current one). */
export function trainedTasks(info: PalModelInfo): readonly string[] {
  return info.prompt_template_version === promptVersion(info.prompt_format ?? 'text') ? (info.tasks ?? []) : [];
}

/** The part of a transformers.js tokenizer that chat prompts need. */
interface ChatTokenizer {
  readonly chat_template?: unknown;
  apply_chat_template(messages: ChatTurn[], options: { tokenize: false; add_generation_prompt: true }): unknown;
}

/**
 * The prompt format for a model folder: what its pal.json records, else the chat format when its
 * tokenizer has a chat template (a pretrained chat model, not yet trained by PAL Studio), else PAL's
 * text template.
 */
export function promptFormatFor(info: PalModelInfo, tokenizer: unknown): PromptFormat {
  const tok = tokenizer as ChatTokenizer;
  const chat = info.prompt_format ? info.prompt_format === 'chat' : typeof tok.chat_template === 'string' && tok.chat_template.length > 0;
  if (!chat) return TEXT_FORMAT;
  if (typeof tok.chat_template !== 'string')
    throw new Error('The model was trained with chat prompts, but its tokenizer has no chat template (tokenizer_config.json: chat_template).');
  return { kind: 'chat', render: (messages) => String(tok.apply_chat_template([...messages], { tokenize: false, add_generation_prompt: true })) };
}
