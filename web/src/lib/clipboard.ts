/** Copies text for the user; falls back to selecting it when the Clipboard API is not allowed. */
export async function copyText(
  text: string,
  fallbackInput?: HTMLInputElement | HTMLTextAreaElement,
): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackInput) {
      fallbackInput.focus();
      fallbackInput.select();
    }
    return false;
  }
}
