/** A run folder or checkpoint that cannot be used; the message names the file and the problem. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}
