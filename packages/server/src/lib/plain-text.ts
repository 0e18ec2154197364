import { RotorError } from '../errors.js';

/**
 * Control characters (Unicode Cc: U+0000–U+001F, U+007F–U+009F) and unpaired surrogates. Under the
 * `u` flag a well-formed surrogate pair is one code point, so `\p{Cs}` matches only a lone half:
 * the same test as `!String.prototype.isWellFormed()`, which this package's ES2023 lib does not
 * type yet. PostgreSQL refuses U+0000 in text (a 500 before this rule) and cannot store a lone
 * surrogate either (the driver silently turns it into U+FFFD); SQLite stored both as they came.
 */
const CONTROL = /[\p{Cc}\p{Cs}]/u;
const CONTROLS = new RegExp(CONTROL.source, 'gu');

/**
 * Characters that are invisible or change the direction of the text around them, so two strings
 * that look the same compare different: a look-alike account (`ad\u200Ba@example.com`) or a
 * device name that renders backwards. Unicode's Default_Ignorable_Code_Point (TR #44: "should be
 * rendered invisibly when not supported"; TR #39 §3 uses it for identifiers): the format characters
 * (zero-width space and joiners, LRM/RLM, bidi embeddings, overrides and isolates, soft hyphen,
 * word joiner, BOM, tags), the combining grapheme joiner U+034F, the variation selectors (U+FE00–
 * U+FE0F, U+E0100–U+E01EF, the Mongolian U+180B–U+180F), the Khmer inherent vowels U+17B4/U+17B5
 * and the Hangul fillers; plus Unicode Cf outside it, the line and paragraph separators
 * U+2028/U+2029 (a line break where none shows) and the blank Braille pattern U+2800 (a "letter"
 * that renders as a space). Sources: Unicode TR #36 §2 (visual spoofing), TR #39 §3. An attack
 * review found the first version, Cf and a hand-picked list, let U+034F, U+FE0F, U+E0100, U+180B,
 * U+17B4 and U+2800 through.
 */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\u2028\u2029\u2800]/u;

/** How a field is used: `identity` fields (emails, user and device names) are what people read. */
export interface PlainTextOptions {
  /** Also refuse the invisible and direction-changing characters of look-alike names. */
  identity: boolean;
}

/**
 * The one input rule for every string Rotor accepts and stores or looks up, the same on SQLite and
 * PostgreSQL: no control characters and no lone surrogates anywhere, and for identity fields none
 * of the invisible characters that make look-alikes either. Throws `invalid_request` with
 * `details.field` naming the field; called by the engine (registration, login, the CLI's lookups),
 * before anything else, so bad input costs no hashing and reaches no query.
 * @example assertPlainText(input.email, 'email', { identity: true });
 */
export function assertPlainText(value: string, field: string, options: PlainTextOptions): void {
  if (CONTROL.test(value)) {
    throw new RotorError('invalid_request', `The ${field} contains a control character.`, {
      details: { field },
    });
  }
  if (options.identity && INVISIBLE.test(value)) {
    throw new RotorError(
      'invalid_request',
      `The ${field} contains an invisible or direction-changing character.`,
      { details: { field } },
    );
  }
}

/** The longest header value kept, in UTF-16 code units; real user agents are under 300. */
const MAX_HEADER_TEXT_LENGTH = 512;

/**
 * A request header value (user agent, address) made storable: control characters and lone
 * surrogates removed, cut to 512 code units, null when nothing is left. Stripped rather than
 * refused: browsers and HTTP libraries never send controls (Node's parser already refuses them in
 * headers, but a proxy, `inject` or an embedding application may not), the value is informational
 * (shown in the device list and the audit log), and refusing a login over it would lock out a
 * client its user cannot change.
 */
export function storableHeaderText(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  // Cut, then strip again: the cut may split a surrogate pair.
  const cut = value.replace(CONTROLS, '').slice(0, MAX_HEADER_TEXT_LENGTH).replace(CONTROLS, '');
  return cut === '' ? null : cut;
}
