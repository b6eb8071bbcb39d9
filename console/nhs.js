// The NHS number check as the service applies it (prescrypt-barcode's nhs.rs): ten digits,
// optionally grouped 3-3-4 with single spaces or hyphens; Modulus 11 check digit (a remainder
// giving 10 is never valid); ten identical digits are placeholders. The browser tests run this
// against the Rust rule over many numbers, so the two cannot drift apart unnoticed.

/** What is wrong with `text` as an NHS number, or `null` when it is one. */
export function nhsNumberProblem(text) {
  const grouped = /^(\d{3})([ -])(\d{3})\2(\d{4})$/.exec(text);
  const digits = /^\d{10}$/.test(text) ? text : grouped ? grouped[1] + grouped[3] + grouped[4] : null;
  if (digits === null) return 'an NHS number is 10 digits';
  let sum = 0;
  for (let i = 0; i < 9; i += 1) sum += Number(digits[i]) * (10 - i);
  let check = 11 - (sum % 11);
  if (check === 11) check = 0;
  if (check === 10 || Number(digits[9]) !== check) {
    return 'the NHS number check digit does not match (Modulus 11)';
  }
  if (/^(\d)\1{9}$/.test(digits)) return 'ten identical digits are a placeholder, not an NHS number';
  return null;
}
