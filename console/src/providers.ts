// Provider presets for "Add model": the credential keys each provider's probe reads and its
// default api_base. Mirrored from crates/modelreg-probe/src/providers.rs (`kind` and the
// probes) until the API has an /assets/providers endpoint; docs/console.md says so.
export interface Preset {
  id: string;
  label: string;
  /** The LiteLLM prefix: litellm_model is `<prefix>/<model>`. */
  prefix: string;
  example: string;
  /** The endpoint the probe uses when api_base is empty; none means api_base is required. */
  defaultBase: string | null;
  /** Credential keys to fill; `optional` ones may be left empty. */
  keys: { key: string; optional?: boolean; hint?: string }[];
  needsApiVersion?: boolean;
}

const apiKey = [{ key: 'api_key' }];

export const PRESETS: Preset[] = [
  { id: 'openai', label: 'OpenAI', prefix: 'openai', example: 'openai/gpt-4o', defaultBase: 'https://api.openai.com/v1', keys: apiKey },
  { id: 'azure', label: 'Azure OpenAI', prefix: 'azure', example: 'azure/my-deployment', defaultBase: null, keys: apiKey, needsApiVersion: true },
  { id: 'anthropic', label: 'Anthropic', prefix: 'anthropic', example: 'anthropic/claude-3-5-sonnet-20240620', defaultBase: 'https://api.anthropic.com', keys: apiKey },
  { id: 'gemini', label: 'Google Gemini', prefix: 'gemini', example: 'gemini/gemini-1.5-pro', defaultBase: 'https://generativelanguage.googleapis.com', keys: apiKey },
  { id: 'ollama', label: 'Ollama', prefix: 'ollama', example: 'ollama/llama3', defaultBase: 'http://localhost:11434', keys: [{ key: 'api_key', optional: true, hint: 'only if your Ollama checks one' }] },
  {
    id: 'bedrock',
    label: 'AWS Bedrock',
    prefix: 'bedrock',
    example: 'bedrock/anthropic.claude-3-sonnet-20240229-v1:0',
    defaultBase: 'https://bedrock.<region>.amazonaws.com',
    keys: [{ key: 'aws_access_key_id' }, { key: 'aws_secret_access_key' }, { key: 'aws_region_name', hint: 'e.g. us-east-1' }, { key: 'aws_session_token', optional: true }],
  },
  { id: 'groq', label: 'Groq', prefix: 'groq', example: 'groq/llama3-70b-8192', defaultBase: 'https://api.groq.com/openai/v1', keys: apiKey },
  { id: 'mistral', label: 'Mistral', prefix: 'mistral', example: 'mistral/mistral-large-latest', defaultBase: 'https://api.mistral.ai/v1', keys: apiKey },
  { id: 'together_ai', label: 'Together AI', prefix: 'together_ai', example: 'together_ai/meta-llama/Llama-3-70b-chat-hf', defaultBase: 'https://api.together.xyz/v1', keys: apiKey },
  { id: 'deepseek', label: 'DeepSeek', prefix: 'deepseek', example: 'deepseek/deepseek-chat', defaultBase: 'https://api.deepseek.com/v1', keys: apiKey },
  { id: 'openrouter', label: 'OpenRouter', prefix: 'openrouter', example: 'openrouter/openai/gpt-4o', defaultBase: 'https://openrouter.ai/api/v1', keys: apiKey },
  { id: 'fireworks_ai', label: 'Fireworks AI', prefix: 'fireworks_ai', example: 'fireworks_ai/accounts/fireworks/models/llama-v3-70b-instruct', defaultBase: 'https://api.fireworks.ai/inference/v1', keys: apiKey },
  { id: 'perplexity', label: 'Perplexity', prefix: 'perplexity', example: 'perplexity/sonar', defaultBase: 'https://api.perplexity.ai', keys: apiKey },
  { id: 'hosted_vllm', label: 'vLLM (OpenAI-compatible)', prefix: 'hosted_vllm', example: 'hosted_vllm/meta-llama/Llama-3-8B-Instruct', defaultBase: null, keys: [{ key: 'api_key', optional: true }] },
  { id: 'openai_compatible', label: 'Other OpenAI-compatible', prefix: 'openai', example: 'openai/my-model', defaultBase: null, keys: apiKey },
];
