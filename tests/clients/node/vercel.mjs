// The Vercel AI SDK's default OpenAI provider (the Responses API) against the gateway, with one tool.
// Usage: node vercel.mjs generate|stream   (env: GATEWAY_URL, GATEWAY_TOKEN, GATEWAY_MODEL)
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, stepCountIs, tool } from "ai";
import { z } from "zod";

const openai = createOpenAI({ baseURL: process.env.GATEWAY_URL, apiKey: process.env.GATEWAY_TOKEN });
const calls = [];
const tools = {
  get_weather: tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push(city);
      return `sunny in ${city}`;
    },
  }),
};
const request = { model: openai(process.env.GATEWAY_MODEL), tools, stopWhen: stepCountIs(3),
                  prompt: "What is the weather in Oslo?" };

let text;
let steps;
if (process.argv[2] === "stream") {
  const result = streamText(request);
  let streamed = "";
  for await (const delta of result.textStream) streamed += delta;
  text = await result.text;
  steps = (await result.steps).length;
  if (streamed !== text) throw new Error(`streamed text ${JSON.stringify(streamed)} != ${JSON.stringify(text)}`);
} else {
  const result = await generateText(request);
  text = result.text;
  steps = result.steps.length;
}
console.log(JSON.stringify({ text, steps, calls }));
