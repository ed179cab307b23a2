/**
 * Default name lists of the HICO-DET "HOIA" JSON used by QPIC / CDN / GEN-VLKT:
 * verbs are 1-based indices into the 117 HICO-DET verbs (alphabetical), objects are COCO-91
 * category ids (80 classes with gaps). Names use underscores instead of spaces.
 */
export const HICO_VERBS: readonly string[] = [
  'adjust', 'assemble', 'block', 'blow', 'board', 'break', 'brush_with', 'buy', 'carry', 'catch',
  'chase', 'check', 'clean', 'control', 'cook', 'cut', 'cut_with', 'direct', 'drag', 'dribble',
  'drink_with', 'drive', 'dry', 'eat', 'eat_at', 'exit', 'feed', 'fill', 'flip', 'flush', 'fly',
  'greet', 'grind', 'groom', 'herd', 'hit', 'hold', 'hop_on', 'hose', 'hug', 'hunt', 'inspect',
  'install', 'jump', 'kick', 'kiss', 'lasso', 'launch', 'lick', 'lie_on', 'lift', 'light', 'load',
  'lose', 'make', 'milk', 'move', 'no_interaction', 'open', 'operate', 'pack', 'paint', 'park', 'pay',
  'peel', 'pet', 'pick', 'pick_up', 'point', 'pour', 'pull', 'push', 'race', 'read', 'release',
  'repair', 'ride', 'row', 'run', 'sail', 'scratch', 'serve', 'set', 'shear', 'sign', 'sip', 'sit_at',
  'sit_on', 'slide', 'smell', 'spin', 'squeeze', 'stab', 'stand_on', 'stand_under', 'stick', 'stir',
  'stop_at', 'straddle', 'swing', 'tag', 'talk_on', 'teach', 'text_on', 'throw', 'tie', 'toast',
  'train', 'turn', 'type_on', 'walk', 'wash', 'watch', 'wave', 'wear', 'wield', 'zip',
];

/** COCO-91 id -> name (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused). */
export const COCO91_OBJECTS: ReadonlyMap<number, string> = new Map<number, string>([
  [1, 'person'], [2, 'bicycle'], [3, 'car'], [4, 'motorcycle'], [5, 'airplane'], [6, 'bus'],
  [7, 'train'], [8, 'truck'], [9, 'boat'], [10, 'traffic_light'], [11, 'fire_hydrant'],
  [13, 'stop_sign'], [14, 'parking_meter'], [15, 'bench'], [16, 'bird'], [17, 'cat'], [18, 'dog'],
  [19, 'horse'], [20, 'sheep'], [21, 'cow'], [22, 'elephant'], [23, 'bear'], [24, 'zebra'],
  [25, 'giraffe'], [27, 'backpack'], [28, 'umbrella'], [31, 'handbag'], [32, 'tie'],
  [33, 'suitcase'], [34, 'frisbee'], [35, 'skis'], [36, 'snowboard'], [37, 'sports_ball'],
  [38, 'kite'], [39, 'baseball_bat'], [40, 'baseball_glove'], [41, 'skateboard'],
  [42, 'surfboard'], [43, 'tennis_racket'], [44, 'bottle'], [46, 'wine_glass'], [47, 'cup'],
  [48, 'fork'], [49, 'knife'], [50, 'spoon'], [51, 'bowl'], [52, 'banana'], [53, 'apple'],
  [54, 'sandwich'], [55, 'orange'], [56, 'broccoli'], [57, 'carrot'], [58, 'hot_dog'],
  [59, 'pizza'], [60, 'donut'], [61, 'cake'], [62, 'chair'], [63, 'couch'], [64, 'potted_plant'],
  [65, 'bed'], [67, 'dining_table'], [70, 'toilet'], [72, 'tv'], [73, 'laptop'], [74, 'mouse'],
  [75, 'remote'], [76, 'keyboard'], [77, 'cell_phone'], [78, 'microwave'], [79, 'oven'],
  [80, 'toaster'], [81, 'sink'], [82, 'refrigerator'], [84, 'book'], [85, 'clock'], [86, 'vase'],
  [87, 'scissors'], [88, 'teddy_bear'], [89, 'hair_drier'], [90, 'toothbrush'],
]);
